"""Name -> constructor registry of encoder presets (tests are parametrised over it)."""

from __future__ import annotations

from collections.abc import Callable

from earthplat.nn.encoder import Encoder, EncoderConfig

ENCODER_PRESETS: dict[str, Callable[..., EncoderConfig]] = {
    "pico": EncoderConfig.pico,
    "nano": EncoderConfig.nano,
    "tiny": EncoderConfig.tiny,
    "base": EncoderConfig.base,
    "large": EncoderConfig.large,
}

PUBLISHED_PARAMS = {"nano": 1.4e6, "tiny": 6.2e6, "base": 89e6, "large": 308e6}
"""OlmoEarth v1 encoder parameter counts as published (patch projections of maps included),
rounded to two significant digits."""

REFERENCE_PARAMS = {"nano": 1_361_024, "tiny": 6_202_560, "base": 88_953_600, "large": 307_770_368}
"""Exact counts of the reference encoder (olmoearth-pretrain 0.1.2, ``EncoderConfig`` with the
v1 modalities: sentinel2_l2a, sentinel1, landsat, worldcover, srtm, openstreetmap_raster,
wri_canopy_height_map, cdl, worldcereal; mlp_ratio 4), measured on this machine. The published
"1.4M" for nano is this 1.361M rounded up (2.8 % off), so nano is checked against the exact
reference count and the others against both."""


def build_encoder(name: str, **overrides) -> Encoder:
    if name not in ENCODER_PRESETS:
        raise KeyError(f"unknown encoder preset {name!r}; known: {', '.join(ENCODER_PRESETS)}")
    return ENCODER_PRESETS[name](**overrides).build()


def registries() -> dict[str, dict]:
    """Every name -> constructor registry of ``earthplat.nn``: encoder presets, task-model
    backbones and heads (imported here on demand, so this module stays light)."""
    from earthplat.nn.backbones import BACKBONES
    from earthplat.nn.heads import HEADS

    return {"encoders": ENCODER_PRESETS, "backbones": BACKBONES, "heads": HEADS}
