"""Reusable layers, the encoder, the predictor, and a name -> constructor registry.

Names are resolved lazily: ``import earthplat.nn`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Encoder": "earthplat.nn.encoder",
    "EncoderConfig": "earthplat.nn.encoder",
    "ModalityInput": "earthplat.nn.encoder",
    "Predictor": "earthplat.nn.predictor",
    "PredictorConfig": "earthplat.nn.predictor",
    "export_encoder": "earthplat.nn.export",
    "load_encoder": "earthplat.nn.export",
    "encoder_from_checkpoint": "earthplat.nn.export",
    "ENCODER_PRESETS": "earthplat.nn.registry",
    "build_encoder": "earthplat.nn.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'earthplat.nn' has no attribute {name!r}")
