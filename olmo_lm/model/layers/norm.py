"""RMSNorm, the gated RMSNorm of Gated DeltaNet outputs, and the L2 normalisation of its keys.

All three normalise in float32 and return the input dtype, as the published models do, so a
bf16 forward normalises exactly like an fp32 one up to the final rounding.

``rms_norm`` is RMSNorm with its own backward: under autograd, torch's ``F.rms_norm`` on CPU runs
as its decomposition (pow, mean, rsqrt, two multiplies), and differentiating that graph costs
about ten full-size passes and temporaries; here the forward is one reduction and two
multiplies, and the backward is the closed form ``dx = rstd (g w - x_hat mean(g w x_hat))``,
``dw = sum(g x_hat)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps: float):
        # [..., C] -> [..., C]; rstd [..., 1], all in float32. The sum of squares comes from
        # one reduction pass (no x^2 temporary); the output is the only allocation.
        xf = x.float()
        ms = torch.linalg.vector_norm(xf, dim=-1, keepdim=True).square_().div_(x.shape[-1])
        rstd = ms.add_(eps).rsqrt_()
        ctx.save_for_backward(x, weight, rstd)
        return torch.mul(xf, rstd).mul_(weight.float()).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, weight, rstd = ctx.saved_tensors
        g = grad.float()
        x_hat = x.float() * rstd
        gw = g * weight.float()
        tmp = gw * x_hat
        dot = tmp.mean(-1, keepdim=True)  # [..., 1]
        dw = None
        if ctx.needs_input_grad[1]:
            dw = torch.mul(g, x_hat, out=tmp).flatten(0, -2).sum(0).to(weight.dtype)
        dx = gw.mul_(rstd).addcmul_(x_hat, dot.mul_(rstd), value=-1.0)  # rstd (gw - x_hat dot)
        return dx.to(x.dtype), dw, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``x / rms(x) * weight`` over the last dimension, in float32, returned in ``x``'s dtype."""
    if torch.compiler.is_compiling():
        # compiled graphs fuse the plain formula themselves
        y = F.rms_norm(x.float(), (x.shape[-1],), eps=eps)
        return (weight.float() * y).to(x.dtype)
    return _RMSNormFunction.apply(x, weight, eps)


class RMSNorm(nn.Module):
    """``x / rms(x) * weight`` over the last dimension."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


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
