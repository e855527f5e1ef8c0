"""RMSNorm, the gated RMSNorm of Gated DeltaNet outputs, and the L2 normalisation of its keys.

All three normalise in float32 and return the input dtype, as the published models do, so a
bf16 forward normalises exactly like an fp32 one up to the final rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """``x / rms(x) * weight`` over the last dimension."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        return (self.weight.float() * y).to(x.dtype)


class GatedRMSNorm(RMSNorm):
    """``rmsnorm(x) * silu(gate)``: the output norm of Gated DeltaNet, applied per head."""

    def forward(self, x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        # the published kernel rounds the normalised value to the input dtype before the gate
        y = self.weight * y.to(x.dtype)
        return (y.float() * F.silu(gate.float())).to(x.dtype)


def l2_normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x / sqrt(sum(x^2) + eps)`` over the last dimension (eps inside the root, as FLA does)."""
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + eps)
