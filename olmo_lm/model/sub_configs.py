"""The feed-forward and token-mixer options of ``TransformerConfig`` that have settings of
their own: the mixture of experts (OLMoE, FlexOlmo) and Gated DeltaNet (Olmo Hybrid)."""

from __future__ import annotations

from dataclasses import dataclass

from earthplat.traincore.errors import TrainCoreConfigError


@dataclass
class MoEConfig:
    """A dropless top-k mixture-of-experts feed-forward (OLMoE, FlexOlmo)."""

    n_experts: int = 8
    """Experts per MoE layer."""
    top_k: int = 2
    """Experts each token is routed to."""
    hidden: int | None = None
    """SwiGLU width of one expert; ``None`` uses the model's ``mlp_hidden`` rule."""
    norm_topk_prob: bool = False
    """Renormalise the top-k router probabilities to sum to 1 (OLMoE and FlexOlmo do not)."""
    lb_loss_weight: float = 0.01
    """Weight of the load-balancing loss in the training loss (OLMoE: 0.01)."""
    z_loss_weight: float = 0.001
    """Weight of the router z-loss in the training loss (OLMoE: 0.001)."""

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= self.n_experts:
            raise TrainCoreConfigError(
                f"moe.top_k={self.top_k} must lie in [1, moe.n_experts={self.n_experts}]"
            )


@dataclass
class GatedDeltaNetConfig:
    """The Gated DeltaNet token mixer of Olmo Hybrid."""

    n_heads: int | None = None
    """Key (and query) heads; ``None`` uses the model's ``n_heads``."""
    n_v_heads: int | None = None
    """Value heads (a multiple of ``n_heads``); ``None`` equals ``n_heads``."""
    head_k_dim: int | None = None
    """Key head width; ``None`` is ``int(0.75 d_model / n_heads)`` (the published rule)."""
    head_v_dim: int | None = None
    """Value head width; ``None`` is twice ``head_k_dim``."""
    conv_kernel: int = 4
    """Width of the causal depthwise convolutions on q, k and v."""
    allow_neg_eigval: bool = True
    """Scale beta to [0, 2], so the state transition may have negative eigenvalues."""
    chunk_size: int = 64
    """Tokens per chunk of the chunked (training/prefill) form."""
    block: str = "pre_norm"
    """Norm placement of the GDN layers (Olmo Hybrid: pre-norm; its attention layers are not)."""

    def __post_init__(self) -> None:
        if self.conv_kernel < 2 or self.chunk_size < 1:
            raise TrainCoreConfigError("gdn.conv_kernel must be >= 2 and gdn.chunk_size >= 1")
