"""Window classification: multi-class (softmax) and multi-label (per-class sigmoid)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MultilabelAveragePrecision,
    MultilabelF1Score,
)

from earthplat.train.tasks.base import TaskModule, class_weighted_ce, masked_mean


class ClassificationTask(TaskModule):
    """One class per window. Loss: cross-entropy (optional class weights), invalid targets
    ignored. Metrics: accuracy (micro), macro accuracy and macro F1."""

    task = "classification"
    default_head = "linear"

    def compute_loss(self, out: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        target = torch.where(batch["target_valid"].bool(), batch["target"].long(), -1)
        return class_weighted_ce(out, target, self.class_weights)

    def build_metrics(self) -> nn.ModuleDict:
        k = self.spec.num_outputs
        return nn.ModuleDict(
            {
                "accuracy": MulticlassAccuracy(k, average="micro", ignore_index=-1),
                "accuracy_macro": MulticlassAccuracy(k, average="macro", ignore_index=-1),
                "f1_macro": MulticlassF1Score(k, average="macro", ignore_index=-1),
            }
        )

    def update_metrics(self, metrics: nn.ModuleDict, out: torch.Tensor, batch: dict) -> None:
        target = torch.where(batch["target_valid"].bool(), batch["target"].long(), -1)
        for metric in metrics.values():
            metric.update(out.detach(), target)

    def predict_outputs(self, out: torch.Tensor) -> torch.Tensor:
        return out.softmax(dim=1)  # [B, K] probabilities


class MultilabelTask(TaskModule):
    """Any number of classes per window. Loss: binary cross-entropy per class (class weights
    scale the positives), samples with invalid targets ignored. Metrics: macro F1 at 0.5 and
    macro average precision (mAP)."""

    task = "multilabel"
    default_head = "linear"

    def compute_loss(self, out: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        valid = batch["target_valid"].bool()  # [B]
        loss = F.binary_cross_entropy_with_logits(
            out, batch["target"].float(), pos_weight=self.class_weights, reduction="none"
        )  # [B, K]
        return masked_mean(loss, valid[:, None].expand_as(loss))

    def build_metrics(self) -> nn.ModuleDict:
        k = self.spec.num_outputs
        return nn.ModuleDict(
            {
                "f1_macro": MultilabelF1Score(k, average="macro"),
                "map": MultilabelAveragePrecision(k, average="macro"),
            }
        )

    def update_metrics(self, metrics: nn.ModuleDict, out: torch.Tensor, batch: dict) -> None:
        valid = batch["target_valid"].bool()
        if not valid.any():
            return
        for metric in metrics.values():
            metric.update(out.detach()[valid], batch["target"][valid].long())

    def predict_outputs(self, out: torch.Tensor) -> torch.Tensor:
        return out.sigmoid()  # [B, K] per-class probabilities
