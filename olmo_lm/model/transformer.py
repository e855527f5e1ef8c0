"""The OLMo-family decoder: embedding -> blocks from the registry -> norm -> LM head.

``forward`` serves training (token ids in, logits out), prefill and cached decoding (with a
``ModelCache``) and left-padded batches (with an ``attention_mask``): positions are counted per
row over real tokens only, padding never enters a key or a recurrent state, so a padded row
computes exactly what the same prompt alone would.

Document masking (``doc_ids``, training and scoring only): a packed row of several documents is
computed as if each document were alone: attention never crosses a document boundary and
positions restart at 0 in each document (the block-diagonal causal mask varlen attention
implements). Gated DeltaNet layers carry a recurrent state along the row, so models with them
refuse ``doc_ids`` (see ``document_masking_error``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.utils.checkpoint
from torch import nn

from olmo_lm.model.blocks import build_block
from olmo_lm.model.cache import ModelCache
from olmo_lm.model.config import TransformerConfig
from olmo_lm.model.layers.gated_deltanet import GatedDeltaNet
from olmo_lm.model.layers.lm_loss import fused_lm_head_loss, lm_losses
from olmo_lm.model.layers.moe import GroupedExperts, Router, RouterStats
from olmo_lm.model.layers.norm import RMSNorm
from olmo_lm.model.layers.rotary import RotaryEmbedding

IGNORE_INDEX = -100
"""A label that takes no part in the loss (prompt and padding tokens in post-training)."""


@dataclass
class ForwardContext:
    """What every layer of one forward shares."""

    positions: torch.Tensor
    """``[B, T]`` absolute positions (for RoPE and masks; padding clamped to 0)."""
    key_positions: torch.Tensor
    """``[B, T]`` positions as keys: -1 at padding."""
    valid: torch.Tensor | None
    """``[B, T]`` True at real tokens; ``None`` when nothing is padding."""
    rope: dict[str, tuple[torch.Tensor, torch.Tensor]]
    """cos/sin per rope kind: ``full`` (scaled, if the config scales) and ``plain``."""
    cache: ModelCache | None = None
    doc_ids: torch.Tensor | None = None
    """``[B, T]`` document of each token (document masking); ``None``: one stream per row."""
    collect_router_stats: bool = False
    router_stats: list[RouterStats] = field(default_factory=list)

    def layer_cache(self, module: nn.Module):
        return None if self.cache is None else self.cache.layers[module.layer_index]


@dataclass
class ModelOutput:
    logits: torch.Tensor | None
    """``[B, T, V]``; ``None`` when the forward was given ``labels`` (the loss is computed
    without materialising the logits)."""
    router_stats: list[RouterStats]
    """One entry per MoE layer (empty for dense models)."""
    loss: torch.Tensor | None = None
    """With ``labels``: ``ce_loss + z_loss_weight * z_loss`` (the differentiable one)."""
    ce_loss: torch.Tensor | None = None
    """With ``labels``: mean next-token cross-entropy over the labels that are not
    ``IGNORE_INDEX`` (detached, for the log)."""
    z_loss: torch.Tensor | None = None
    """With ``labels``: ``mean(logsumexp(logits)^2)`` (detached, for the log)."""


def trunc_normal_(tensor: torch.Tensor, std: float, bound: float) -> torch.Tensor:
    """Normal(0, std) truncated to [-bound, bound], by rejection: draw all, redraw the few
    outside (0.27% at 3 std). Exact, and ~8x faster than ``nn.init.trunc_normal_``'s
    inverse-CDF sampling, which matters when a rank initialises billions of parameters.
    A sharded (DTensor) parameter initialises its local shard."""
    if tensor.is_meta:
        return tensor
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    if not local.is_contiguous():
        with torch.no_grad():
            return local.copy_(trunc_normal_(torch.empty_like(local).contiguous(), std, bound))
    with torch.no_grad():
        flat = local.view(-1)
        flat.normal_(0.0, std)
        redraw = (flat.abs() > bound).nonzero().squeeze(1)  # one pass over the tensor
        while redraw.numel():
            values = torch.randn(redraw.numel(), dtype=flat.dtype, device=flat.device) * std
            flat[redraw] = values
            redraw = redraw[values.abs() > bound]
    return tensor


def document_masking_error(cfg: TransformerConfig) -> str | None:
    """Why ``cfg``'s model cannot mask attention across documents, or ``None`` if it can.

    Gated DeltaNet (Olmo Hybrid) would need its recurrent state and short convolution reset at
    every document start inside the chunked scan; that is not implemented, so the flag is
    refused rather than silently leaking state across documents."""
    if "gated_deltanet" in cfg.resolved_layer_types:
        return (
            "document masking is not supported for models with gated_deltanet layers (Olmo "
            "Hybrid): their recurrent state crosses document boundaries; train them with "
            "document masking off"
        )
    return None


def document_positions(doc_ids: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` position of each token within its document (0 at each document start)."""
    t = doc_ids.shape[1]
    index = torch.arange(t, device=doc_ids.device).expand_as(doc_ids)
    starts = torch.ones_like(doc_ids, dtype=torch.bool)
    starts[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    first = torch.where(starts, index, torch.zeros_like(index)).cummax(1).values
    return index - first


class Transformer(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(build_block(cfg, i) for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        head_dim = cfg.resolved_head_dim
        self.rope_full = RotaryEmbedding(head_dim, cfg.rope_theta, cfg.rope_scaling)
        self.rope_plain = (
            RotaryEmbedding(head_dim, cfg.rope_theta) if cfg.rope_scaling is not None else None
        )
        self.activation_checkpointing = False
        """Recompute each block in backward instead of storing its activations."""
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re-)initialise every parameter and buffer, e.g. after ``to_empty`` from meta.

        Weights: normal, std ``init_std`` truncated at 3 std (OLMo 2); norms: ones; Gated
        DeltaNet's decay and step parameters: their published init.
        """
        std = self.config.init_std
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding | Router):
                trunc_normal_(module.weight, std, 3 * std)
            elif isinstance(module, GroupedExperts):
                for p in (module.w_gate_up, module.w_down):
                    trunc_normal_(p, std, 3 * std)
            elif isinstance(module, RMSNorm):
                module.reset_parameters()
            elif isinstance(module, GatedDeltaNet):
                module.reset_gdn_parameters()
            elif isinstance(module, RotaryEmbedding):
                module.reset_buffers()

    # --- forward --------------------------------------------------------------------------------
    def _context(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        cache,
        doc_ids: torch.Tensor | None = None,
    ) -> ForwardContext:
        if doc_ids is not None:
            return self._document_context(input_ids, attention_mask, cache, doc_ids)
        b, t = input_ids.shape
        device = input_ids.device
        valid = None if attention_mask is None else attention_mask.to(device).bool()
        if valid is not None and bool(valid.all()):
            valid = None  # nothing to mask: keep the fast paths
        if cache is not None and cache.seen is None:
            cache.seen = torch.zeros(b, dtype=torch.long, device=device)
        start = cache.seen if cache is not None else torch.zeros(b, dtype=torch.long, device=device)
        if valid is None:
            positions = start[:, None] + torch.arange(t, device=device)  # [B, T]
            key_positions = positions
        else:
            positions = start[:, None] + valid.long().cumsum(1) - 1
            key_positions = positions.masked_fill(~valid, -1)
            positions = positions.clamp_min(0)
        if cache is None and valid is None:
            longest = t  # no device sync on the training path
        else:
            longest = int(positions.max()) + 1 if t else 0
        if longest > self.config.max_seq_len:
            raise ValueError(
                f"sequence of {longest} tokens exceeds max_seq_len={self.config.max_seq_len}; "
                "raise max_seq_len in the model config or pass a shorter input"
            )
        rope = {"full": self.rope_full(positions)}
        rope["plain"] = self.rope_plain(positions) if self.rope_plain is not None else rope["full"]
        if cache is not None:
            cache.seen = start + (t if valid is None else valid.long().sum(1))
            cache.length += t
        return ForwardContext(positions, key_positions, valid, rope, cache)

    def _document_context(
        self, input_ids: torch.Tensor, attention_mask, cache, doc_ids: torch.Tensor
    ) -> ForwardContext:
        """The context of a packed row: positions restart in each document."""
        refused = document_masking_error(self.config)
        if refused is not None:
            raise ValueError(refused)
        if cache is not None or attention_mask is not None:
            raise ValueError(
                "doc_ids (document masking) is for training and scoring whole packed rows; "
                "do not combine it with a decoding cache or an attention_mask"
            )
        if doc_ids.shape != input_ids.shape:
            raise ValueError(
                f"doc_ids has shape {tuple(doc_ids.shape)}, input_ids {tuple(input_ids.shape)}; "
                "pass one document id per input token"
            )
        doc_ids = doc_ids.to(input_ids.device)
        positions = document_positions(doc_ids)  # [B, T]
        if input_ids.shape[1] > self.config.max_seq_len:
            raise ValueError(
                f"row of {input_ids.shape[1]} tokens exceeds max_seq_len="
                f"{self.config.max_seq_len}; raise max_seq_len in the model config"
            )
        rope = {"full": self.rope_full(positions)}
        rope["plain"] = self.rope_plain(positions) if self.rope_plain is not None else rope["full"]
        return ForwardContext(positions, positions, None, rope, None, doc_ids=doc_ids)

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        cache: ModelCache | None = None,
        return_output: bool = False,
        labels: torch.Tensor | None = None,
        z_loss_weight: float = 0.0,
        hidden_states: bool = False,
        doc_ids: torch.Tensor | None = None,
    ) -> torch.Tensor | ModelOutput:
        """Logits ``[B, T, V]`` for ``input_ids [B, T]``.

        ``attention_mask [B, T]`` (1 = token, 0 = padding) marks left padding; ``cache``
        continues from (and updates) a decoding state; ``return_output`` also returns the MoE
        layers' router statistics for the training loss. ``labels [B, T]`` (the next token of
        each position) returns a ``ModelOutput`` with the cross-entropy and z-loss instead of
        the logits (see ``layers.lm_loss``); positions labelled ``IGNORE_INDEX`` are left out
        of it (the loss is the mean over the others). ``hidden_states`` returns the final
        normed hidden states ``[B, T, C]`` instead of the logits (a reward head reads them).
        ``doc_ids [B, T]`` (document of each token, e.g. 0, 0, 1, 1, 1) masks attention across
        documents of a packed row and restarts positions per document.
        """
        ctx = self._context(input_ids, attention_mask, cache, doc_ids)
        ctx.collect_router_stats = return_output or labels is not None
        x = self.embed(input_ids)  # [B, T, C]
        recompute = self.activation_checkpointing and torch.is_grad_enabled()
        for block in self.blocks:
            if recompute:  # keep only block inputs; recompute the insides in backward
                x = torch.utils.checkpoint.checkpoint(block, x, ctx, use_reentrant=False)
            else:
                x = block(x, ctx)
        h = self.norm(x)  # [B, T, C]
        if hidden_states:
            return ModelOutput(h, ctx.router_stats) if return_output else h
        if labels is not None:
            h, labels = h.flatten(0, 1), labels.flatten()
            keep = labels != IGNORE_INDEX
            if not bool(keep.all()):
                h, labels = h[keep], labels[keep]  # [N_kept, C]: only these rows reach the head
            if labels.numel() == 0:  # nothing to predict: a zero loss still in the graph
                zero = h.sum() * 0.0
                return ModelOutput(None, ctx.router_stats, zero, zero.detach(), zero.detach())
            loss, ce, z = self._loss(h, labels, z_loss_weight)
            return ModelOutput(None, ctx.router_stats, loss, ce, z)
        logits = self.lm_head(h)  # [B, T, V]
        if return_output:
            return ModelOutput(logits, ctx.router_stats)
        return logits

    def _loss(
        self, h: torch.Tensor, labels: torch.Tensor, z_weight: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        weight = self.lm_head.weight
        if hasattr(weight, "to_local") or torch.is_autocast_enabled(h.device.type):
            # a tensor-parallel head (its plan runs through the module call) or autocast:
            # the plain formula on materialised logits
            ce, z = lm_losses(self.lm_head(h), labels)
            return ce + z_weight * z, ce.detach(), z.detach()
        return fused_lm_head_loss(h, weight, labels, z_weight)

    def new_cache(self, capacity: int | None = None) -> ModelCache:
        """An empty decoding state for up to ``capacity`` columns (default ``max_seq_len``)."""
        return ModelCache.for_model(self.config, capacity or self.config.max_seq_len)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Prompt plus ``max_new_tokens`` sampled tokens ``[B, T + new]`` (KV-cached; see
        ``olmo_lm.generate.generate`` for top-p, stop ids/strings and padded batches)."""
        from olmo_lm.generate import SamplingConfig, generate

        sampling = SamplingConfig(temperature=temperature, top_k=top_k, **kwargs)
        return generate(self, input_ids, max_new_tokens, sampling, generator=generator).tokens
