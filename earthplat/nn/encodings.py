"""Fixed encodings of a token's place: time index, month, and 2-D position in metres.

Each fills a quarter of the model width (the fourth quarter is the learnable band-set
embedding, in the encoder). Formulas follow the sin-cos encodings of MAE / SatMAE / Scale-MAE.
"""

from __future__ import annotations

import math

import torch


def sincos_1d(pos: torch.Tensor, dim: int, base: float = 10_000.0) -> torch.Tensor:
    """[...] positions -> [..., dim]: half sines, half cosines over geometric frequencies."""
    if dim % 2:
        raise ValueError(f"sin-cos encoding needs an even width, got {dim}")
    freqs = base ** (-torch.arange(dim // 2, device=pos.device, dtype=torch.float32) / (dim / 2))
    angles = pos.float()[..., None] * freqs  # [..., dim/2]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def sincos_2d(rows: torch.Tensor, cols: torch.Tensor, dim: int) -> torch.Tensor:
    """Rows and columns (any shape, same shape) -> [..., dim]: half for each axis."""
    if dim % 4:
        raise ValueError(f"2-D sin-cos encoding needs a width divisible by 4, got {dim}")
    return torch.cat([sincos_1d(rows, dim // 2), sincos_1d(cols, dim // 2)], dim=-1)


def month_encoding(month: torch.Tensor, dim: int) -> torch.Tensor:
    """Months 0..11 on a circle (December next to January) -> [..., dim]."""
    if dim % 2:
        raise ValueError(f"month encoding needs an even width, got {dim}")
    angle = month.float() * (2 * math.pi / 12)
    half = dim // 2
    return torch.cat(
        [
            angle.sin()[..., None].expand(*angle.shape, half),
            angle.cos()[..., None].expand(*angle.shape, half),
        ],
        dim=-1,
    )


# --- the encodings OlmoEarth's published weights were trained with ------------------------------
# Same four quarters, different formulas: the 1-D frequencies are 10000^(-i / (2 * width)) rather
# than MAE's 10000^(-2i / width), the 2-D encoding puts columns in its first half and rows in its
# second, and positions are patch indices (not centres) times the ground-resolution ratio. A
# published checkpoint only reproduces its numbers with these (``EncoderConfig.encodings``).
def olmoearth_sincos_1d(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """[...] positions -> [..., dim]: sines then cosines of ``pos * 10000^(-i / (2 dim))``."""
    if dim % 2:
        raise ValueError(f"sin-cos encoding needs an even width, got {dim}")
    omega = torch.arange(dim // 2, device=pos.device, dtype=torch.float32) / dim / 2.0
    angles = pos.float()[..., None] * (1.0 / 10_000.0**omega)  # [..., dim/2]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def olmoearth_sincos_2d(rows: torch.Tensor, cols: torch.Tensor, dim: int) -> torch.Tensor:
    """Rows and columns (same shape) -> [..., dim]: columns in the first half, rows second."""
    if dim % 4:
        raise ValueError(f"2-D sin-cos encoding needs a width divisible by 4, got {dim}")
    return torch.cat([olmoearth_sincos_1d(cols, dim // 2), olmoearth_sincos_1d(rows, dim // 2)], -1)
