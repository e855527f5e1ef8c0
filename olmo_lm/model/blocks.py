"""The registries a decoder is composed from: token mixers, feed-forwards and block kinds.

A layer is ``BLOCKS[kind](mixer, ffn, ...)`` with ``mixer = MIXERS[layer type](config, i)`` and
``ffn = FEED_FORWARDS[config.ffn](config)``. Adding a kind here makes it configurable and
puts it under the registry-parametrised tests.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from olmo_lm.model.layers.attention import Attention
from olmo_lm.model.layers.gated_deltanet import GatedDeltaNet
from olmo_lm.model.layers.mlp import SwiGLU
from olmo_lm.model.layers.moe import MoE
from olmo_lm.model.layers.norm import RMSNorm


class ReorderedNormBlock(nn.Module):
    """OLMo 2's block: norms on the sublayer *outputs*, ``h = x + norm(mixer(x))``,
    ``out = h + norm(ffn(h))`` (more stable than pre-norm at scale, per the OLMo 2 paper)."""

    def __init__(self, mixer: nn.Module, ffn: nn.Module, d_model: int, eps: float) -> None:
        super().__init__()
        self.mixer, self.mixer_norm = mixer, RMSNorm(d_model, eps)
        self.ffn, self.ffn_norm = ffn, RMSNorm(d_model, eps)

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        h = x + self.mixer_norm(self.mixer(x, ctx))
        return h + self.ffn_norm(self.ffn(h, ctx))


class PreNormBlock(ReorderedNormBlock):
    """The Llama/OLMoE block: ``h = x + mixer(norm(x))``, ``out = h + ffn(norm(h))``."""

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        h = x + self.mixer(self.mixer_norm(x), ctx)
        return h + self.ffn(self.ffn_norm(h), ctx)


def _attention(cfg, window: int | None, rope_kind: str) -> Attention:
    return Attention(
        cfg.d_model,
        cfg.n_heads,
        cfg.kv_heads,
        cfg.resolved_head_dim,
        qk_norm=cfg.qk_norm,
        norm_eps=cfg.norm_eps,
        window=window,
        clip_qkv=cfg.clip_qkv,
        rope_kind=rope_kind if cfg.rope else None,
    )


def _gated_deltanet(cfg) -> GatedDeltaNet:
    heads, v_heads, dk, dv = cfg.gdn_dims
    return GatedDeltaNet(
        cfg.d_model,
        heads,
        v_heads,
        dk,
        dv,
        conv_kernel=cfg.gdn.conv_kernel,
        allow_neg_eigval=cfg.gdn.allow_neg_eigval,
        chunk_size=cfg.gdn.chunk_size,
    )


MIXERS: dict[str, Callable] = {
    "full_attention": lambda cfg: _attention(cfg, None, "full"),
    # rope scaling is for the long-range layers; windowed ones keep plain RoPE (Olmo 3)
    "sliding_attention": lambda cfg: _attention(cfg, cfg.sliding_window, "plain"),
    "gated_deltanet": _gated_deltanet,
}
"""Token mixers by layer kind (the names transformers' ``layer_types`` use, except
``gated_deltanet`` for its ``linear_attention``)."""

FEED_FORWARDS: dict[str, Callable] = {
    "mlp": lambda cfg: SwiGLU(cfg.d_model, cfg.resolved_mlp_hidden),
    "moe": lambda cfg: MoE(
        cfg.d_model, cfg.moe_hidden, cfg.moe.n_experts, cfg.moe.top_k, cfg.moe.norm_topk_prob
    ),
}
"""Feed-forwards by ``TransformerConfig.ffn``."""

BLOCKS: dict[str, type[ReorderedNormBlock]] = {
    "reordered_norm": ReorderedNormBlock,
    "pre_norm": PreNormBlock,
}
"""Block kinds (norm placement) by ``TransformerConfig.block`` / ``GatedDeltaNetConfig.block``."""


def block_kind(cfg, layer_type: str) -> str:
    return cfg.gdn.block if layer_type == "gated_deltanet" else cfg.block


def build_block(cfg, index: int) -> ReorderedNormBlock:
    """Layer ``index`` of ``cfg``."""
    layer_type = cfg.resolved_layer_types[index]
    mixer = MIXERS[layer_type](cfg)
    mixer.layer_index = index  # where its decoding state lives in a ModelCache
    block = BLOCKS[block_kind(cfg, layer_type)](
        mixer, FEED_FORWARDS[cfg.ffn](cfg), cfg.d_model, cfg.norm_eps
    )
    block.layer_type = layer_type
    return block
