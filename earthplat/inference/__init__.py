"""Inference: stream any-size rasters or datasets through a task model and write COG / GeoJSON /
GeoParquet / STAC outputs (``predict``), resumable and spread over processes when asked.

Modules: ``reader`` (windowed input), ``tiling`` (tiles, chunks, blending), ``engine`` (one
chunk through the model), ``parts`` (finished chunks on disk: resume), ``runner`` (one process
or Lightning DDP), ``cog`` / ``vector`` / ``stac`` (outputs), ``pipeline`` (``predict``),
``dataset`` (dataset directories), ``embeddings`` (one vector per window), ``cli``.

Importing this package does not import torch; names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "predict": "earthplat.inference.pipeline",
    "predict_sources": "earthplat.inference.pipeline",
    "load_model": "earthplat.inference.pipeline",
    "predict_dataset": "earthplat.inference.dataset",
    "model_layers": "earthplat.inference.dataset",
    "MissingInputError": "earthplat.inference.dataset",
    "mosaic_predictions": "earthplat.inference.mosaic",
    "embed_windows": "earthplat.inference.embeddings",
    "InferenceError": "earthplat.inference.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'earthplat.inference' has no attribute {name!r}")
