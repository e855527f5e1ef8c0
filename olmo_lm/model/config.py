"""``TransformerConfig``: the shape of every OLMo-family decoder, with the published presets.

One decoder covers the family; a model is a choice of, per layer, a *token mixer*
(``full_attention``, ``sliding_attention``, ``gated_deltanet``) and, for all layers, a
*feed-forward* (``mlp`` or ``moe``), joined by a *block* kind that places the norms
(``reordered_norm``: OLMo 2's ``x + norm(f(x))``; ``pre_norm``: ``x + f(norm(x))``). The kinds
live in the registries of ``olmo_lm.model.blocks``.

=================  ==============  =====================================  =================
family             block           mixers                                 feed-forward
=================  ==============  =====================================  =================
OLMo 2             reordered_norm  full_attention                         mlp
Olmo 3             reordered_norm  3 sliding : 1 full, last layer full    mlp
OLMoE              pre_norm        full_attention                         moe (64, top-8)
FlexOlmo           reordered_norm  full_attention                         moe (7 experts)
Olmo Hybrid        reordered_norm  3 gated_deltanet (pre_norm) : 1 full   mlp
=================  ==============  =====================================  =================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.model.layers.mlp import swiglu_hidden_size
from olmo_lm.model.layers.rotary import RopeScalingConfig
from olmo_lm.model.sub_configs import GatedDeltaNetConfig, MoEConfig

__all__ = [
    "OLMO2_VOCAB",
    "PRESETS",
    "SMALL_PRESETS",
    "GatedDeltaNetConfig",
    "MoEConfig",
    "RopeScalingConfig",
    "TransformerConfig",
]

OLMO2_VOCAB = 100_352
"""The dolma2 tokenizer's vocabulary padded to a multiple of 128 (OLMo 2, FlexOlmo, Hybrid)."""


def _coerce(cls, value):
    return cls(**value) if isinstance(value, dict) else value


@dataclass
class TransformerConfig:
    """Decoder-only transformer of the OLMo family (defaults: a small OLMo 2)."""

    vocab_size: int = 260
    """Vocabulary size (padded by the tokenizer to a multiple that suits matmuls)."""
    d_model: int = 128
    """Residual width."""
    n_layers: int = 4
    """Transformer blocks."""
    n_heads: int = 4
    """Query heads of attention layers."""
    n_kv_heads: int | None = None
    """Key/value heads (grouped-query attention); ``None`` means ``n_heads``."""
    head_dim: int | None = None
    """Attention head width; ``None`` is ``d_model / n_heads``."""
    mlp_hidden: int | None = None
    """SwiGLU hidden width; ``None`` applies OLMo's rule (``swiglu_hidden_size``)."""
    mlp_hidden_multiplier: float | None = None
    """Multiplier in OLMo's hidden-size rule (e.g. 1.5 for OLMo 2 1B)."""
    mlp_hidden_multiple_of: int = 256
    """The rule rounds the hidden width up to a multiple of this."""
    max_seq_len: int = 256
    """Longest sequence (prompt plus generated tokens) the model accepts."""
    rope: bool = True
    """Rotary embeddings in attention layers (``False``: no positional encoding, NoPE)."""
    rope_theta: float = 500_000.0
    """Rotary embedding base (OLMo 2 onward: 500k)."""
    rope_scaling: RopeScalingConfig | None = None
    """Frequency scaling for long context, applied to full-attention layers only (Olmo 3);
    sliding-window layers keep plain RoPE."""
    norm_eps: float = 1e-6
    """RMSNorm epsilon."""
    qk_norm: bool = True
    """RMS-normalise queries and keys over the full projection (OLMo 2)."""
    clip_qkv: float | None = None
    """Clamp q, k and v to [-clip, clip] (an OLMoE option; ``None``: off)."""
    tie_embeddings: bool = False
    """Share input embedding and output projection (the published models do not)."""
    init_std: float = 0.02
    """Normal init std of weights."""
    block: str = "reordered_norm"
    """Norm placement of attention layers: ``reordered_norm`` (OLMo 2) or ``pre_norm``."""
    layer_pattern: list[str] = field(default_factory=lambda: ["full_attention"])
    """Mixer kinds cycled over the layers, e.g. Olmo 3's
    ``[sliding_attention, sliding_attention, sliding_attention, full_attention]``."""
    layer_types: list[str] | None = None
    """Explicit mixer kind per layer (overrides ``layer_pattern``), as checkpoints list them."""
    last_layer_full: bool = True
    """A pattern that would end on a sliding-window layer ends on full attention instead."""
    sliding_window: int = 4096
    """Window of sliding-window layers: a query at p sees keys in (p - window, p]."""
    ffn: str = "mlp"
    """Feed-forward of every layer: ``mlp`` or ``moe``."""
    moe: MoEConfig | None = None
    """Mixture-of-experts settings (``ffn: moe``); ``None`` takes the defaults."""
    gdn: GatedDeltaNetConfig | None = None
    """Gated DeltaNet settings (layers of kind ``gated_deltanet``); ``None``: defaults."""

    def __post_init__(self) -> None:
        from olmo_lm.model.blocks import BLOCKS, FEED_FORWARDS, MIXERS

        self.rope_scaling = _coerce(RopeScalingConfig, self.rope_scaling)
        self.moe = _coerce(MoEConfig, self.moe)
        self.gdn = _coerce(GatedDeltaNetConfig, self.gdn)
        kv = self.kv_heads
        if self.head_dim is None and self.d_model % self.n_heads:
            raise TrainCoreConfigError(
                f"d_model={self.d_model} must be divisible by n_heads={self.n_heads} "
                "(or set head_dim)"
            )
        if self.n_heads % kv:
            raise TrainCoreConfigError(
                f"n_heads={self.n_heads} must be divisible by n_kv_heads={kv}"
            )
        if self.resolved_head_dim % 2:
            raise TrainCoreConfigError("the head dimension must be even for rotary embeddings")
        if self.block not in BLOCKS:
            raise TrainCoreConfigError(
                f"block {self.block!r} is unknown; use one of {sorted(BLOCKS)}"
            )
        if self.ffn not in FEED_FORWARDS:
            raise TrainCoreConfigError(
                f"ffn {self.ffn!r} is unknown; use one of {sorted(FEED_FORWARDS)}"
            )
        if self.ffn == "moe" and self.moe is None:
            self.moe = MoEConfig()
        kinds = self.resolved_layer_types
        bad = sorted(set(kinds) - set(MIXERS))
        if bad:
            raise TrainCoreConfigError(
                f"layer kinds {bad} are unknown; use kinds from {sorted(MIXERS)}"
            )
        if self.layer_types is not None and len(self.layer_types) != self.n_layers:
            raise TrainCoreConfigError(
                f"layer_types lists {len(self.layer_types)} layers, n_layers={self.n_layers}"
            )
        if "gated_deltanet" in kinds:
            if self.gdn is None:
                self.gdn = GatedDeltaNetConfig()
            if self.gdn.block not in BLOCKS:
                raise TrainCoreConfigError(f"gdn.block {self.gdn.block!r} is unknown")
            if self.gdn_dims[1] % self.gdn_dims[0]:
                raise TrainCoreConfigError("gdn.n_v_heads must be a multiple of gdn.n_heads")
        if self.sliding_window < 1:
            raise TrainCoreConfigError("sliding_window must be >= 1")

    # --- derived shapes ----------------------------------------------------------------------
    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim or self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def resolved_mlp_hidden(self) -> int:
        if self.mlp_hidden is not None:
            return self.mlp_hidden
        return swiglu_hidden_size(
            self.d_model, self.mlp_hidden_multiplier, self.mlp_hidden_multiple_of
        )

    @property
    def moe_hidden(self) -> int:
        return self.moe.hidden or self.resolved_mlp_hidden

    @property
    def gdn_dims(self) -> tuple[int, int, int, int]:
        """(key heads, value heads, key head width, value head width) of GDN layers."""
        g = self.gdn or GatedDeltaNetConfig()
        heads = g.n_heads or self.n_heads
        dk = g.head_k_dim or int(0.75 * self.d_model / heads)
        return heads, g.n_v_heads or heads, dk, g.head_v_dim or 2 * dk

    @property
    def resolved_layer_types(self) -> list[str]:
        """The mixer kind of each layer."""
        if self.layer_types is not None:
            return list(self.layer_types)
        kinds = [self.layer_pattern[i % len(self.layer_pattern)] for i in range(self.n_layers)]
        if self.last_layer_full and kinds and kinds[-1] == "sliding_attention":
            kinds[-1] = "full_attention"
        return kinds

    # --- counts ------------------------------------------------------------------------------
    def num_params(self, *, embeddings: bool = True) -> int:
        """Parameters of ``build()``, counted on the meta device (no memory is allocated)."""
        import torch

        with torch.device("meta"):
            model = self.build()
        total = sum(p.numel() for p in model.parameters())
        if not embeddings:
            total -= model.embed.weight.numel()
            if not self.tie_embeddings:
                total -= model.lm_head.weight.numel()
        return total

    def active_params(self, *, embeddings: bool = True) -> int:
        """Parameters one token uses: MoE layers count only ``top_k`` of their experts."""
        total = self.num_params(embeddings=embeddings)
        if self.ffn != "moe":
            return total
        per_expert = 3 * self.d_model * self.moe_hidden
        return total - self.n_layers * (self.moe.n_experts - self.moe.top_k) * per_expert

    def train_flops_per_token(self, seq_len: int) -> float:
        """Forward + backward FLOPs per token: 6 x the active weights (the LM head included,
        the embedding lookup not), plus 6 x the attention score/value products per token
        (2 matmuls of ``context x heads x head_dim``; the context is ``min(T, window)`` on
        sliding layers), plus Gated DeltaNet's state products."""
        # the LM head is a matmul even when tied to the embedding (whose lookup is not)
        weights = self.active_params(embeddings=False) + self.vocab_size * self.d_model
        flops = 6.0 * weights
        attn_width = self.n_heads * self.resolved_head_dim
        for kind in self.resolved_layer_types:
            if kind == "full_attention":
                flops += 12.0 * attn_width * seq_len
            elif kind == "sliding_attention":
                flops += 12.0 * attn_width * min(seq_len, self.sliding_window)
            else:
                _, hv, dk, dv = self.gdn_dims
                chunk = min(seq_len, self.gdn.chunk_size)
                # per token: state update and read-out (2 x dk x dv), intra-chunk q.k and a.u
                flops += 6.0 * hv * (4 * dk * dv + 2 * chunk * (dk + dv))
        return flops

    def build(self):
        from olmo_lm.model.transformer import Transformer

        return Transformer(self)

    def replace(self, **changes) -> TransformerConfig:
        """A copy with ``changes`` applied (e.g. a preset at a smaller vocabulary)."""
        return dataclasses.replace(self, **changes)

    # --- small presets (CPU) -----------------------------------------------------------------
    @classmethod
    def tiny(cls, vocab_size: int = 260) -> TransformerConfig:
        """About 0.9M parameters: a CPU test and demo model (OLMo 2 layout)."""
        return cls(
            vocab_size=vocab_size,
            d_model=128,
            n_layers=4,
            n_heads=4,
            mlp_hidden=384,
            max_seq_len=256,
        )

    @classmethod
    def olmo2_ladder(cls, size: str, vocab_size: int = 260) -> TransformerConfig:
        """The CPU ladder of OLMo 2 shapes, named by *non-embedding* parameters:
        ``1M``, ``10M``, ``30M``, ``100M``, ``300M`` (OLMo's hidden-size rule throughout)."""
        shapes = {
            "1M": (128, 4, 4),
            "10M": (320, 8, 5),
            "30M": (512, 8, 8),
            "100M": (768, 12, 12),
            "300M": (1024, 24, 16),
        }
        if size not in shapes:
            raise TrainCoreConfigError(f"ladder size {size!r} is unknown; use {list(shapes)}")
        d, n_layers, heads = shapes[size]
        return cls(
            vocab_size=vocab_size, d_model=d, n_layers=n_layers, n_heads=heads, max_seq_len=2048
        )

    @classmethod
    def olmo3_tiny(cls, vocab_size: int = 260) -> TransformerConfig:
        """A CPU Olmo 3: 3 sliding (window 32) : 1 full, GQA, yarn on the full layers."""
        return cls(
            vocab_size=vocab_size,
            d_model=128,
            n_layers=4,
            n_heads=4,
            n_kv_heads=2,
            max_seq_len=512,
            layer_pattern=["sliding_attention"] * 3 + ["full_attention"],
            sliding_window=32,
            rope_scaling=RopeScalingConfig(kind="yarn", factor=4.0, original_max_seq_len=128),
        )

    @classmethod
    def olmoe_tiny(cls, vocab_size: int = 260) -> TransformerConfig:
        """A CPU OLMoE: pre-norm, 8 experts of width 128, top-2."""
        return cls(
            vocab_size=vocab_size,
            d_model=128,
            n_layers=4,
            n_heads=4,
            max_seq_len=256,
            block="pre_norm",
            ffn="moe",
            moe=MoEConfig(n_experts=8, top_k=2, hidden=128),
        )

    @classmethod
    def flex_olmo_tiny(cls, vocab_size: int = 260) -> TransformerConfig:
        """A CPU FlexOlmo: reordered norm, 4 experts of the dense width, top-2."""
        return cls(
            vocab_size=vocab_size,
            d_model=128,
            n_layers=4,
            n_heads=4,
            max_seq_len=256,
            ffn="moe",
            moe=MoEConfig(n_experts=4, top_k=2),
        )

    @classmethod
    def olmo_hybrid_tiny(cls, vocab_size: int = 260) -> TransformerConfig:
        """A CPU Olmo Hybrid: 3 Gated DeltaNet : 1 attention."""
        return cls(
            vocab_size=vocab_size,
            d_model=128,
            n_layers=4,
            n_heads=4,
            max_seq_len=256,
            layer_pattern=["gated_deltanet"] * 3 + ["full_attention"],
            gdn=GatedDeltaNetConfig(head_k_dim=32, head_v_dim=64, chunk_size=32),
        )

    # --- published configurations ------------------------------------------------------------
    @classmethod
    def olmo2_1B(cls) -> TransformerConfig:
        """OLMo 2 1B (OLMo-2-0425-1B): 1.48B parameters."""
        return cls(
            vocab_size=OLMO2_VOCAB,
            d_model=2048,
            n_layers=16,
            n_heads=16,
            mlp_hidden_multiplier=1.5,  # -> 8192
            max_seq_len=4096,
        )

    @classmethod
    def olmo2_7B(cls) -> TransformerConfig:
        """OLMo 2 7B (OLMo-2-1124-7B): 7.30B parameters."""
        return cls(
            vocab_size=OLMO2_VOCAB, d_model=4096, n_layers=32, n_heads=32, max_seq_len=4096
        )  # hidden 11008 by the rule

    @classmethod
    def olmo2_13B(cls) -> TransformerConfig:
        """OLMo 2 13B (OLMo-2-1124-13B): 13.7B parameters."""
        return cls(
            vocab_size=OLMO2_VOCAB, d_model=5120, n_layers=40, n_heads=40, max_seq_len=4096
        )  # hidden 13824 by the rule

    @classmethod
    def olmo2_32B(cls) -> TransformerConfig:
        """OLMo 2 32B (OLMo-2-0325-32B): 32.2B parameters, GQA with 8 kv heads."""
        return cls(
            vocab_size=OLMO2_VOCAB,
            d_model=5120,
            n_layers=64,
            n_heads=40,
            n_kv_heads=8,
            mlp_hidden=27648,
            max_seq_len=4096,
        )

    @classmethod
    def olmo3_7B(cls) -> TransformerConfig:
        """Olmo 3 7B (Olmo-3-1025-7B): 7.30B; 3 sliding (4096) : 1 full; yarn 8k -> 64k."""
        return cls(
            vocab_size=100_278,
            d_model=4096,
            n_layers=32,
            n_heads=32,
            max_seq_len=65_536,
            layer_pattern=["sliding_attention"] * 3 + ["full_attention"],
            sliding_window=4096,
            rope_scaling=_olmo3_yarn(),
        )

    @classmethod
    def olmo3_32B(cls) -> TransformerConfig:
        """Olmo 3 32B (Olmo-3-1125-32B): 32.2B; GQA 40/8; 3 sliding : 1 full; yarn."""
        return cls(
            vocab_size=100_278,
            d_model=5120,
            n_layers=64,
            n_heads=40,
            n_kv_heads=8,
            mlp_hidden=27648,
            max_seq_len=65_536,
            layer_pattern=["sliding_attention"] * 3 + ["full_attention"],
            sliding_window=4096,
            rope_scaling=_olmo3_yarn(),
        )

    @classmethod
    def olmoe_1B_7B(cls) -> TransformerConfig:
        """OLMoE-1B-7B (0924): 6.92B parameters, 1.28B active; 64 experts, top-8, pre-norm."""
        return cls(
            vocab_size=50_304,
            d_model=2048,
            n_layers=16,
            n_heads=16,
            max_seq_len=4096,
            rope_theta=10_000.0,
            norm_eps=1e-5,
            block="pre_norm",
            ffn="moe",
            moe=MoEConfig(n_experts=64, top_k=8, hidden=1024),
        )

    @classmethod
    def olmo_hybrid_7B(cls) -> TransformerConfig:
        """Olmo Hybrid 7B: 3 Gated DeltaNet : 1 attention, d 3840, 30 heads (GDN key heads of
        96, value heads of 192), 64k context."""
        return cls(
            vocab_size=OLMO2_VOCAB,
            d_model=3840,
            n_layers=32,
            n_heads=30,
            mlp_hidden=11008,
            max_seq_len=65_536,
            layer_pattern=["gated_deltanet"] * 3 + ["full_attention"],
            gdn=GatedDeltaNetConfig(n_heads=30, head_k_dim=96, head_v_dim=192),
        )

    @classmethod
    def flex_olmo_7x7B(cls) -> TransformerConfig:
        """FlexOlmo-7x7B-1T: seven 7B-shaped experts (the public model plus six domain experts
        trained independently) behind a router, OLMo 2 attention; 33.3B parameters. Top-k as
        transformers' FlexOlmo configuration (5)."""
        return cls(
            vocab_size=OLMO2_VOCAB,
            d_model=4096,
            n_layers=32,
            n_heads=32,
            max_seq_len=4096,
            ffn="moe",
            moe=MoEConfig(n_experts=7, top_k=5, hidden=11008),
        )


def _olmo3_yarn() -> RopeScalingConfig:
    return RopeScalingConfig(
        kind="yarn",
        factor=8.0,
        original_max_seq_len=8192,
        attention_factor=1.2079441541679836,
        beta_fast=32.0,
        beta_slow=1.0,
    )


PRESETS = {
    "tiny": TransformerConfig.tiny,
    "olmo3_tiny": TransformerConfig.olmo3_tiny,
    "olmoe_tiny": TransformerConfig.olmoe_tiny,
    "flex_olmo_tiny": TransformerConfig.flex_olmo_tiny,
    "olmo_hybrid_tiny": TransformerConfig.olmo_hybrid_tiny,
    "olmo2_1B": TransformerConfig.olmo2_1B,
    "olmo2_7B": TransformerConfig.olmo2_7B,
    "olmo2_13B": TransformerConfig.olmo2_13B,
    "olmo2_32B": TransformerConfig.olmo2_32B,
    "olmo3_7B": TransformerConfig.olmo3_7B,
    "olmo3_32B": TransformerConfig.olmo3_32B,
    "olmoe_1B_7B": TransformerConfig.olmoe_1B_7B,
    "olmo_hybrid_7B": TransformerConfig.olmo_hybrid_7B,
    "flex_olmo_7x7B": TransformerConfig.flex_olmo_7x7B,
}
"""Named configurations (``olmo2_ladder`` sizes are reached through that classmethod)."""

SMALL_PRESETS = ["tiny", "olmo3_tiny", "olmoe_tiny", "flex_olmo_tiny", "olmo_hybrid_tiny"]
"""Presets small enough to build and run in CPU tests."""
