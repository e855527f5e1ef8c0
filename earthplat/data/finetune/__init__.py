"""Fine-tuning data: labelled windows -> ``earthplat.batch.Sample`` chips -> ``Batch``\\es.

Modules, by role: ``config`` (the dataset, task, label, split and chip settings), ``augment``
(crops, flips and rotations of arrays and boxes), ``targets`` (one target builder per task
kind of ``earthplat.tasks``), ``dataset`` (``FinetuneDataset``), ``windows`` (which windows are
usable, and their split) and ``datamodule`` (``FinetuneDataModule``, which imports Lightning,
so it is loaded when first asked for).
"""

from __future__ import annotations

from typing import Any

from earthplat.data.finetune.augment import tile_starts
from earthplat.data.finetune.config import FinetuneDataConfig, LabelConfig, SplitConfig
from earthplat.data.finetune.windows import split_dataset, usable_windows

__all__ = [
    "FinetuneDataConfig",
    "FinetuneDataModule",
    "FinetuneDataset",
    "LabelConfig",
    "SplitConfig",
    "TrainChipSampler",
    "split_dataset",
    "tile_starts",
    "usable_windows",
]


def __getattr__(name: str) -> Any:
    # the dataset needs torch and the data module Lightning: loaded when first asked for, so
    # that configs and splits stay light (YAML class_path earthplat.data.finetune.X works)
    if name == "FinetuneDataset":
        from earthplat.data.finetune.dataset import FinetuneDataset

        return FinetuneDataset
    if name in ("FinetuneDataModule", "TrainChipSampler"):
        from earthplat.data.finetune import datamodule

        return getattr(datamodule, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
