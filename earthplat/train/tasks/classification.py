"""Window classification: multi-class (softmax) and multi-label (per-class sigmoid)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MultilabelAveragePrecision,
    MultilabelF1Score,
)

from earthplat.batch import Batch
from earthplat.train.tasks.base import TaskModule, ce_count, class_weighted_ce, masked_mean


class ClassificationTask(TaskModule):
    """One class per window. Loss: cross-entropy (optional class weights), invalid targets
    ignored. Metrics: accuracy (micro), macro accuracy and macro F1."""

    task = "classification"

    def compute_loss(self, out: torch.Tensor, batch: Batch) -> torch.Tensor:
        target = torch.where(batch.target_valid.bool(), batch.target.long(), -1)
        return class_weighted_ce(out, target, self.class_weights)

    def loss_weight(self, batch: Batch) -> float:
        target = torch.where(batch.target_valid.bool(), batch.target.long(), -1)
        return float(ce_count(target, self.class_weights))

    def build_metrics(self) -> nn.ModuleDict:
        k = self.spec.num_outputs
        return nn.ModuleDict(
            {
                "accuracy": MulticlassAccuracy(k, average="micro", ignore_index=-1),
                "accuracy_macro": MulticlassAccuracy(k, average="macro", ignore_index=-1),
                "f1_macro": MulticlassF1Score(k, average="macro", ignore_index=-1),
            }
        )

    def update_metrics(self, metrics: nn.ModuleDict, out: torch.Tensor, batch: Batch) -> None:
        target = torch.where(batch.target_valid.bool(), batch.target.long(), -1)
        for metric in metrics.values():
            metric.update(out.detach(), target)

    def predict_outputs(self, out: torch.Tensor) -> torch.Tensor:
        return out.softmax(dim=1)  # [B, K] probabilities


class MultilabelTask(TaskModule):
    """Any number of classes per window. Loss: binary cross-entropy per class (class weights
    scale the positives), samples with invalid targets ignored. Metrics: macro F1 at 0.5 and
    macro average precision (mAP)."""

    task = "multilabel"

    def compute_loss(self, out: torch.Tensor, batch: Batch) -> torch.Tensor:
        valid = batch.target_valid.bool()  # [B]
        loss = F.binary_cross_entropy_with_logits(
            out, batch.target.float(), pos_weight=self.class_weights, reduction="none"
        )  # [B, K]
        return masked_mean(loss, valid[:, None].expand_as(loss))

    def loss_weight(self, batch: Batch) -> float:
        return float(batch.target_valid.bool().sum()) * batch.target.shape[1]

    def build_metrics(self) -> nn.ModuleDict:
        k = self.spec.num_outputs
        return nn.ModuleDict(
            {
                "f1_macro": MultilabelF1Score(k, average="macro", ignore_index=-1),
                "map": MultilabelAveragePrecision(k, average="macro", ignore_index=-1),
            }
        )

    def update_metrics(self, metrics: nn.ModuleDict, out: torch.Tensor, batch: Batch) -> None:
        # rows without a valid target are ignored (-1) rather than dropped, so every rank
        # updates every metric, also when its shard holds no valid target
        valid = batch.target_valid.bool()
        target = batch.target.long().masked_fill(~valid[:, None], -1)
        for metric in metrics.values():
            metric.update(out.detach(), target)

    def predict_outputs(self, out: torch.Tensor) -> torch.Tensor:
        return out.sigmoid()  # [B, K] per-class probabilities
