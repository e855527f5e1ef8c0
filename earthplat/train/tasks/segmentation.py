"""Semantic segmentation: one class per pixel."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from earthplat.train.tasks.base import TaskModule


class SegmentationTask(TaskModule):
    """Loss: pixel cross-entropy (optional class weights), target -1 / invalid ignored.
    Metrics: mIoU, IoU per class (``iou_<label>``), pixel accuracy and macro accuracy."""

    task = "segmentation"
    default_head = "upernet"

    def _target(self, batch: dict[str, Any]) -> torch.Tensor:
        target = batch["target"].long()
        valid = batch.get("target_valid")
        valid = target >= 0 if valid is None else valid.bool() & (target >= 0)
        return torch.where(valid, target, -1)  # [B, H, W]

    def compute_loss(self, out: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        target = self._target(batch)
        if not (target >= 0).any():
            return out.sum() * 0.0
        return F.cross_entropy(out, target, weight=self.class_weights, ignore_index=-1)

    def build_metrics(self) -> nn.ModuleDict:
        k = self.spec.num_outputs
        return nn.ModuleDict(
            {
                "miou": MulticlassJaccardIndex(k, average="macro", ignore_index=-1),
                "iou": MulticlassJaccardIndex(k, average="none", ignore_index=-1),
                "accuracy": MulticlassAccuracy(k, average="micro", ignore_index=-1),
                "accuracy_macro": MulticlassAccuracy(k, average="macro", ignore_index=-1),
            }
        )

    def update_metrics(self, metrics: nn.ModuleDict, out: torch.Tensor, batch: dict) -> None:
        target = self._target(batch)
        pred = out.detach().argmax(dim=1)
        for metric in metrics.values():
            metric.update(pred, target)

    def predict_outputs(self, out: torch.Tensor) -> torch.Tensor:
        return out.softmax(dim=1)  # [B, K, H, W] probabilities
