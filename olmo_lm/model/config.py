"""``TransformerConfig``: the shape of an OLMo 2 style decoder, with named presets."""

from __future__ import annotations

from dataclasses import dataclass

from earthplat.traincore.errors import TrainCoreConfigError


@dataclass
class TransformerConfig:
    """Decoder-only transformer in the OLMo 2 layout.

    OLMo 2 departs from Llama in two places, both kept here: RMSNorm is applied to the *outputs*
    of attention and MLP before the residual add (reordered norm), and queries and keys are
    RMS-normalised over the full projection (QK-norm).
    """

    vocab_size: int = 260
    """Vocabulary size (padded by the tokenizer to a multiple that suits matmuls)."""
    d_model: int = 128
    """Residual width."""
    n_layers: int = 4
    """Transformer blocks."""
    n_heads: int = 4
    """Query heads."""
    n_kv_heads: int | None = None
    """Key/value heads (grouped-query attention); ``None`` means ``n_heads``."""
    mlp_hidden: int = 512
    """SwiGLU hidden width."""
    max_seq_len: int = 256
    """Longest sequence the rotary cache covers."""
    rope_theta: float = 10_000.0
    """Rotary embedding base."""
    norm_eps: float = 1e-6
    """RMSNorm epsilon."""
    qk_norm: bool = True
    """RMS-normalise queries and keys (OLMo 2)."""
    tie_embeddings: bool = False
    """Share input embedding and output projection (OLMo 2 does not)."""
    init_std: float = 0.02
    """Normal init std of weights."""

    def __post_init__(self) -> None:
        kv = self.n_kv_heads or self.n_heads
        if self.d_model % self.n_heads:
            raise TrainCoreConfigError(
                f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}"
            )
        if self.n_heads % kv:
            raise TrainCoreConfigError(
                f"n_heads={self.n_heads} must be divisible by n_kv_heads={kv}"
            )
        if (self.d_model // self.n_heads) % 2:
            raise TrainCoreConfigError("the head dimension must be even for rotary embeddings")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    def num_params(self, *, embeddings: bool = True) -> int:
        """Parameter count computed from the shape (matches ``build()``)."""
        d, h = self.d_model, self.head_dim
        attn = d * d + 2 * d * self.kv_heads * h + d * d
        if self.qk_norm:
            attn += d + self.kv_heads * h
        block = attn + 3 * d * self.mlp_hidden + 2 * d
        emb = self.vocab_size * d * (1 if self.tie_embeddings else 2)
        total = self.n_layers * block + d
        return total + emb if embeddings else total

    def train_flops_per_token(self, seq_len: int) -> float:
        """Forward + backward FLOPs per token: 6N for the weights plus 12 L d T for attention."""
        return (
            6.0 * self.num_params(embeddings=False) + 12.0 * self.n_layers * self.d_model * seq_len
        )

    def build(self):
        from olmo_lm.model.transformer import Transformer

        return Transformer(self)

    # --- presets ---------------------------------------------------------------------------
    @classmethod
    def tiny(cls, vocab_size: int = 260) -> TransformerConfig:
        """About 0.9M parameters: a CPU test and demo model."""
        return cls(
            vocab_size=vocab_size,
            d_model=128,
            n_layers=4,
            n_heads=4,
            mlp_hidden=384,
            max_seq_len=256,
        )

    @classmethod
    def olmo2_1B(cls) -> TransformerConfig:
        """OLMo 2 1B (1.48B parameters with embeddings)."""
        return cls(
            vocab_size=100_352,
            d_model=2048,
            n_layers=16,
            n_heads=16,
            mlp_hidden=8192,
            max_seq_len=4096,
            rope_theta=500_000.0,
        )

    @classmethod
    def olmo2_7B(cls) -> TransformerConfig:
        """OLMo 2 7B (7.30B parameters with embeddings)."""
        return cls(
            vocab_size=100_352,
            d_model=4096,
            n_layers=32,
            n_heads=32,
            mlp_hidden=11_008,
            max_seq_len=4096,
            rope_theta=500_000.0,
        )
