"""Embedding extraction: no training, ``predict_step`` returns per-patch features."""

from __future__ import annotations

from typing import Any

import torch

from earthplat.batch import Batch
from earthplat.errors import EarthplatError
from earthplat.train.tasks.base import TaskModule, batch_inputs


class EmbeddingTask(TaskModule):
    """Wraps a (pretrained) backbone with the identity head. ``num_outputs`` is set to the
    backbone's width. ``predict_step`` returns ``output`` [B, D, h, w] per-patch features and
    ``pooled`` [B, D]."""

    task = "embedding"

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("freeze", "frozen")
        super().__init__(**kwargs)

    def _build(self, spec, load_pretrained: bool) -> None:
        super()._build(spec, load_pretrained)
        self.spec.num_outputs = self.model.backbone.pooled_dim
        self.hparams["task_spec"] = self.spec.to_dict()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        raise EarthplatError("the embedding task extracts features; it has nothing to train")

    def compute_loss(self, out: Any, batch: Batch) -> torch.Tensor:
        return out.sum() * 0.0

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0):
        out = self.model.features(batch_inputs(batch))
        return {
            "window": batch.window,
            "chip": batch.chip,
            "output": out.features[-1],
            "pooled": out.pooled,
        }
