"""Reusable layers, the encoder, the predictor, task models (backbones + heads, saved and
loaded without Lightning), and name -> constructor registries.

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
    "TaskSpec": "earthplat.nn.task_model",
    "TaskModel": "earthplat.nn.task_model",
    "export_task_model": "earthplat.nn.task_model",
    "load_task_model": "earthplat.nn.task_model",
    "BACKBONES": "earthplat.nn.backbones",
    "build_backbone": "earthplat.nn.backbones",
    "HEADS": "earthplat.nn.heads",
    "build_head": "earthplat.nn.heads",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'earthplat.nn' has no attribute {name!r}")
