"""Regression of one value per window (``regression``) or per pixel (``pixel_regression``).

The model predicts in target units: the head's ``target_offset`` / ``target_scale`` (set them
to the target's mean and spread) de-standardise its raw output inside the ``TaskModel``, and
the loss divides by ``target_scale`` again, so training sees standardised errors and inference
gets real values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError

from earthplat.batch import Batch
from earthplat.errors import EarthplatError
from earthplat.train.tasks.base import TaskModule, masked_mean

LOSSES = ("l1", "mse", "huber")


class _Regression(TaskModule):
    def __init__(self, loss: str = "l1", **kwargs) -> None:
        """
        Args:
            loss: ``l1``, ``mse`` or ``huber`` (on standardised errors).
        """
        if loss not in LOSSES:
            raise EarthplatError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.loss_name = loss
        super().__init__(**kwargs)
        self.hparams["loss"] = loss

    def _pairs(self, out: torch.Tensor, batch: Batch):
        pred = out[:, 0]  # [B] or [B, H, W]
        target = batch.target.float()
        valid = batch.target_valid.bool() & torch.isfinite(target)
        return pred, torch.where(valid, target, 0.0), valid

    def compute_loss(self, out: torch.Tensor, batch: Batch) -> torch.Tensor:
        pred, target, valid = self._pairs(out, batch)
        scale = float(self.spec.head.get("target_scale", 1.0))
        err = (pred - target) / scale
        if self.loss_name == "l1":
            per = err.abs()
        elif self.loss_name == "mse":
            per = err.square()
        else:
            per = F.huber_loss(err, torch.zeros_like(err), reduction="none")
        return masked_mean(per, valid)

    def loss_weight(self, batch: Batch) -> float:
        target = batch.target.float()
        return float((batch.target_valid.bool() & torch.isfinite(target)).sum())

    def build_metrics(self) -> nn.ModuleDict:
        return nn.ModuleDict({"mae": MeanAbsoluteError(), "rmse": MeanSquaredError(squared=False)})

    def update_metrics(self, metrics: nn.ModuleDict, out: torch.Tensor, batch: Batch) -> None:
        pred, target, valid = self._pairs(out.detach(), batch)
        for metric in metrics.values():  # also when empty: every rank updates every metric
            metric.update(pred[valid], target[valid])

    def predict_outputs(self, out: torch.Tensor) -> torch.Tensor:
        return out[:, 0]  # [B] or [B, H, W] in target units


class RegressionTask(_Regression):
    """One value per window (target float [B]). Metrics: MAE, RMSE."""

    task = "regression"


class PixelRegressionTask(_Regression):
    """One value per pixel (target float [B, H, W], target_valid mask). Metrics: MAE, RMSE."""

    task = "pixel_regression"
