"""Semantic segmentation: one class per pixel."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

from earthplat.batch import Batch
from earthplat.train.tasks.base import TaskModule, ce_count, class_weighted_ce


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice, averaged over the classes present in ``target`` ([B, H, W], -1 ignored)."""
    valid = (target >= 0).unsqueeze(1).to(logits.dtype)  # [B, 1, H, W]
    probs = logits.softmax(dim=1) * valid
    onehot = F.one_hot(target.clamp_min(0), logits.shape[1]).permute(0, 3, 1, 2) * valid
    inter = (probs * onehot).sum((0, 2, 3))
    total = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    dice = (2 * inter + eps) / (total + eps)  # [K]
    present = onehot.sum((0, 2, 3)) > 0
    return 1 - dice[present].mean()


class SegmentationTask(TaskModule):
    """Loss: pixel cross-entropy (optional class weights), plus ``dice_weight`` x a soft Dice
    loss (mean over classes present in the batch), which optimises overlap (IoU) directly;
    target -1 / invalid ignored.
    Metrics: mIoU, IoU per class (``iou_<label>``), pixel accuracy and macro accuracy."""

    task = "segmentation"

    def __init__(self, dice_weight: float = 0.0, **kwargs) -> None:
        """
        Args:
            dice_weight: weight of the soft Dice term added to cross-entropy (0 = off).
        """
        if dice_weight < 0:
            raise ValueError(f"dice_weight must be >= 0, got {dice_weight}")
        self.dice_weight = float(dice_weight)
        super().__init__(**kwargs)
        self.hparams["dice_weight"] = self.dice_weight

    def _target(self, batch: Batch) -> torch.Tensor:
        target = batch.target.long()
        valid = batch.target_valid
        valid = target >= 0 if valid is None else valid.bool() & (target >= 0)
        return torch.where(valid, target, -1)  # [B, H, W]

    def compute_loss(self, out: torch.Tensor, batch: Batch) -> torch.Tensor:
        target = self._target(batch)
        loss = class_weighted_ce(out, target, self.class_weights)
        if self.dice_weight:
            loss = loss + self.dice_weight * soft_dice_loss(out, target)
        return loss

    def loss_weight(self, batch: Batch) -> float:
        return float(ce_count(self._target(batch), self.class_weights))

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

    def update_metrics(self, metrics: nn.ModuleDict, out: torch.Tensor, batch: Batch) -> None:
        target = self._target(batch)
        pred = out.detach().argmax(dim=1)
        for metric in metrics.values():
            metric.update(pred, target)

    def predict_outputs(self, out: torch.Tensor) -> torch.Tensor:
        return out.softmax(dim=1)  # [B, K, H, W] probabilities
