"""Keeps ``ResumableDataLoader`` positions exact so checkpoints resume the data order."""

from __future__ import annotations

from typing import Any

import lightning as L

from earthplat.traincore.data import iter_resumable_loaders


class DataProgressCallback(L.Callback):
    """Records, before each training batch, how many batches of the epoch have been consumed.

    ``batch_idx`` counts from the start of the epoch and Lightning restores it on resume, so the
    count stays right across restarts. ModelCheckpoint runs after this callback, so a checkpoint
    written at the end of batch k records k + 1 consumed batches.
    """

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        for loader in iter_resumable_loaders(trainer.train_dataloader):
            loader.consumed_batches = batch_idx + 1
