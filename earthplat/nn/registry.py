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
"""OlmoEarth v1 encoder parameter counts as published (patch projections of maps included)."""


def build_encoder(name: str, **overrides) -> Encoder:
    if name not in ENCODER_PRESETS:
        raise KeyError(f"unknown encoder preset {name!r}; known: {', '.join(ENCODER_PRESETS)}")
    return ENCODER_PRESETS[name](**overrides).build()
