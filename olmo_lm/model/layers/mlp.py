"""The SwiGLU feed-forward and OLMo's rule for its hidden width."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def swiglu_hidden_size(
    d_model: int, multiplier: float | None = None, multiple_of: int = 256
) -> int:
    """OLMo's SwiGLU width: ``int(8 d / 3)``, times ``multiplier`` (truncated), rounded up to a
    multiple of ``multiple_of``. The 8/3 keeps a SwiGLU (three matrices) at the parameter count
    of a 4x GELU MLP (two matrices); e.g. d=4096 -> 11008 (OLMo 2 7B), d=2048 with 1.5 -> 8192
    (OLMo 2 1B)."""
    hidden = int(8 * d_model / 3)
    if multiplier is not None:
        hidden = int(multiplier * hidden)
    return multiple_of * math.ceil(hidden / multiple_of)


class SwiGLU(nn.Module):
    """``w_down(silu(w_gate x) * w_up x)``."""

    def __init__(self, d_model: int, hidden: int) -> None:
        super().__init__()
        self.w_gate = nn.Linear(d_model, hidden, bias=False)
        self.w_up = nn.Linear(d_model, hidden, bias=False)
        self.w_down = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor, ctx=None) -> torch.Tensor:
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))
