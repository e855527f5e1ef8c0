"""Tiny seeded encoder inputs for the model tests."""

from __future__ import annotations

import torch

from earthplat.nn.encoder import ModalityInput


def make_inputs(
    b: int = 2,
    t: int = 3,
    size: int = 16,
    seed: int = 0,
    modalities: tuple[str, ...] = ("sentinel2_l2a", "sentinel1", "worldcover"),
    missing: bool = True,
) -> dict[str, ModalityInput]:
    g = torch.Generator().manual_seed(seed)
    channels = {
        "sentinel2_l2a": 12,
        "sentinel2_l1c": 13,
        "sentinel1": 2,
        "landsat": 11,
        "worldcover": 1,
        "dem": 1,
    }
    static = {"worldcover", "dem"}
    out = {}
    for m in modalities:
        tt = 1 if m in static else t
        data = torch.randn(b, tt, channels[m], size, size, generator=g)
        valid = torch.ones(b, tt, size, size, dtype=torch.bool)
        if missing and m == "sentinel2_l2a":
            valid[0, 1] = False  # a cloudy period in sample 0
            valid[1, :, :8, :8] = False  # a gap in sample 1
        months = torch.arange(tt)[None].expand(b, tt)
        stamps = torch.stack(
            [torch.full_like(months, 15), months % 12, torch.full_like(months, 2021)], dim=-1
        )
        out[m] = ModalityInput(data, valid, stamps)
    return out
