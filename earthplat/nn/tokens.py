"""Tokens of the encoder: where each token sits (``TokenLayout``: patch, time step, band set),
the encoder's outputs (``EncoderOutput``, with per-modality feature maps) and the four
encodings a token carries (``token_encodings``: band set, time index, month, position)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from earthplat.errors import SensorError
from earthplat.nn.encodings import (
    month_encoding,
    olmoearth_sincos_1d,
    olmoearth_sincos_2d,
    sincos_1d,
    sincos_2d,
)


@dataclass
class TokenLayout:
    """The token sequence of one batch shape, in order modality -> band set -> t -> row -> col."""

    bandset: torch.Tensor
    """[N] index into the encoder's band sets."""
    modality: torch.Tensor
    """[N] index into the encoder's modalities."""
    t: torch.Tensor
    """[N] time index."""
    row: torch.Tensor
    """[N] patch row."""
    col: torch.Tensor
    """[N] patch column."""
    decode_only: torch.Tensor
    """[N] bool: the token belongs to a map (never encoded)."""
    slices: dict[tuple[str, int], tuple[int, int, int, int, int]] = field(default_factory=dict)
    """(modality, band set) -> (start, T, h, w, end) in the sequence."""

    @property
    def n(self) -> int:
        return self.bandset.numel()


@dataclass
class Tokens:
    x: torch.Tensor
    """[B, N, D] patch embeddings plus encodings."""
    month: torch.Tensor
    """[B, N] month of each token."""
    missing: torch.Tensor
    """[B, N] bool: no valid pixel in the token's patch."""
    layout: TokenLayout
    patch_size: int


@dataclass
class EncoderOutput:
    features: torch.Tensor
    """[B, N, D] encoded tokens (zeros where a token was not encoded)."""
    encoded: torch.Tensor
    """[B, N] bool: which tokens went through the encoder."""
    pooled: torch.Tensor
    """[B, D] mean of the encoded tokens."""
    tokens: Tokens
    projected: torch.Tensor | None = None
    """[B, D] ``pooled`` through the projection head, when ``features`` are not projected
    (published OlmoEarth weights: their ``project_aggregated``); None otherwise."""
    untrained_inputs: tuple[str, ...] = ()
    """Modalities encoded although the weights were not trained to encode them (accepted
    through ``EncoderConfig.extra_inputs``); empty when every input was trained on."""

    def feature_map(self, modality: str | None = None) -> torch.Tensor:
        """[B, D, h, w]: per patch, the mean of its encoded tokens over time and band sets."""
        layout = self.tokens.layout
        chosen = [k for k in layout.slices if modality is None or k[0] == modality]
        if not chosen:
            raise SensorError(f"no tokens of modality {modality!r} in this output")
        h, w = layout.slices[chosen[0]][2:4]
        b, _, d = self.features.shape
        total = self.features.new_zeros(b, h * w, d)
        count = self.features.new_zeros(b, h * w, 1)
        for key in chosen:
            start, t, hh, ww, end = layout.slices[key]
            if (hh, ww) != (h, w):
                raise ValueError("modalities with different grids need modality= in feature_map")
            f = self.features[:, start:end].reshape(b, t, hh * ww, d)
            m = self.encoded[:, start:end].reshape(b, t, hh * ww, 1).to(f.dtype)
            total += (f * m).sum(1)
            count += m.sum(1)
        fmap = total / count.clamp_min(1)
        return fmap.transpose(1, 2).reshape(b, d, h, w)


def token_encodings(
    layout: TokenLayout,
    month: torch.Tensor,
    patch_size: int,
    gsd_m: float,
    bandset_table: torch.Tensor,
    style: str = "earthplat",
    multitemporal: torch.Tensor | None = None,
) -> torch.Tensor:
    """[B, N, 4q] with q the table's width: band-set | time index | month | position.

    ``style="olmoearth"`` uses the formulas OlmoEarth's published weights were trained with
    (``encodings.olmoearth_sincos_1d``): positions at patch indices, not centres, and no time
    or month encoding on static maps (``multitemporal``: [N] bool per token)."""
    q = bandset_table.shape[1]
    scale = patch_size * gsd_m / 10.0
    b = month.shape[0]
    if style == "olmoearth":
        rows, cols = layout.row.float() * scale, layout.col.float() * scale
        timed = (
            torch.ones_like(layout.t, dtype=torch.bool) if multitemporal is None else multitemporal
        )
        time = olmoearth_sincos_1d(layout.t, q) * timed[:, None]
        angle = month.float() / (12 / (2 * math.pi))  # [B, N], as OlmoEarth's month table
        months = torch.cat(
            [angle.sin()[..., None].expand(*angle.shape, q // 2),
             angle.cos()[..., None].expand(*angle.shape, q // 2)],
            dim=-1,
        ) * timed[None, :, None]  # fmt: skip
        static = torch.cat([bandset_table[layout.bandset], time], dim=-1)
        position = olmoearth_sincos_2d(rows, cols, q)
    else:
        rows = (layout.row.float() + 0.5) * scale  # patch centres in 10 m units
        cols = (layout.col.float() + 0.5) * scale
        static = torch.cat([bandset_table[layout.bandset], sincos_1d(layout.t, q)], dim=-1)
        months = month_encoding(month, q)
        position = sincos_2d(rows, cols, q)  # [N, q]
    return torch.cat(
        [static[None].expand(b, -1, -1), months, position[None].expand(b, -1, -1)], dim=-1
    )
