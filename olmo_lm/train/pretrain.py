"""Causal-LM pretraining as a ``TrainCoreModule``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from earthplat.traincore.module import TrainCoreModule, coerce_config, plain_hparams
from earthplat.traincore.optim import OptimizerConfig, SchedulerConfig
from olmo_lm.model.config import TransformerConfig


class CausalLMModule(TrainCoreModule):
    """Next-token cross-entropy on batches of ``[B, T + 1]`` token ids."""

    def __init__(
        self,
        model: TransformerConfig | dict,
        seq_len: int,
        optimizer: OptimizerConfig | dict | None = None,
        scheduler: SchedulerConfig | dict | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        model = coerce_config(TransformerConfig, model)
        self.save_hyperparameters(
            plain_hparams(
                model=model,
                seq_len=seq_len,
                optimizer=self.optimizer_config,
                scheduler=self.scheduler_config,
            )
        )
        self.model_config = model
        self.seq_len = seq_len
        self.model = model.build()
        self.flops_per_sample = model.train_flops_per_token(seq_len) * seq_len

    def fsdp_units(self) -> list[nn.Module]:
        return list(self.model.blocks)

    def tokens_in_batch(self, batch: torch.Tensor) -> int:
        return batch.shape[0] * (batch.shape[1] - 1)

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        inputs, targets = batch[:, :-1], batch[:, 1:]
        logits = self.model(inputs)  # [B, T, V]
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        loss = self._loss(batch)
        self.log("val/loss", loss, prog_bar=True, sync_dist=True)
        self.log("val/bits_per_byte", loss / math.log(2), sync_dist=True)
