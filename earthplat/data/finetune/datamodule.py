"""The fine-tuning ``LightningDataModule`` and its resumable train sampler."""

from __future__ import annotations

from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from earthplat.batch import loader_options
from earthplat.data.dataset import Dataset
from earthplat.data.finetune.config import FinetuneDataConfig
from earthplat.data.finetune.dataset import FinetuneDataset
from earthplat.data.finetune.windows import split_dataset
from earthplat.data.window import Window
from earthplat.errors import DataError
from earthplat.sensors import get_modality
from earthplat.traincore.data import EvalShardSampler, ResumableDataLoader, ResumableSampler


class TrainChipSampler(ResumableSampler):
    """``ResumableSampler`` order yielding ``(index, epoch)``: the dataset draws each chip from
    (seed, epoch, index), so a resumed epoch reproduces the same chips."""

    def __iter__(self):
        order = self.indices()
        skip, self._skip_samples = self._skip_samples, 0
        epoch = self.epoch
        return iter([(j, epoch) for j in order[skip:]])


class FinetuneDataModule(L.LightningDataModule):
    """Train/val/test/predict loaders of ``earthplat.batch.Batch``\\es (see the dataset's docs).

    The train loader is a ``ResumableDataLoader`` (exact resume from checkpoints); val and
    test tile their windows deterministically; predict tiles every usable window."""

    def __init__(self, config: FinetuneDataConfig) -> None:
        super().__init__()
        self.config = config
        self.dataset = Dataset(config.path)
        self.splits: dict[str, list[Window]] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = split_dataset(self.dataset, self.config)

    def windows(self, split: str) -> list[Window]:
        """The windows of ``split``; a clear error if it has none."""
        self.setup()
        members = self.splits.get(split, [])
        if not members:
            counts = {k: len(v) for k, v in self.splits.items()}
            sp = self.config.split
            how = (
                f"lower split.cell_size_m (now {sp.cell_size_m} m) so there are more cells, "
                f"or raise the {split!r} share of split.fractions"
                if sp.kind == "spatial"
                else f"set the window property {sp.property!r} to {split!r} on some windows"
            )
            raise DataError(
                f"the {split!r} split of {self.config.path} has no windows (windows per "
                f"split: {counts}); {how}"
            )
        return members

    @property
    def input_bands(self) -> dict[str, list[str]]:
        """Modality -> band names of the batches (for ``TaskSpec.inputs``)."""
        self.setup()
        w = next(ws[0] for ws in self.splits.values() if ws)
        out = {}
        for layer, modality in self.config.inputs.items():
            spec = get_modality(modality)
            chosen = (self.config.bands or {}).get(layer)
            bands = self.dataset.layer_metadata(w, layer)["bands"]
            out[spec.name] = list(spec.canonical(chosen)) if chosen else list(bands)
        return out

    def _kwargs(self) -> dict[str, Any]:
        return loader_options(self.config.num_workers, self.config.pin_memory)

    def train_dataloader(self):
        cfg = self.config
        ds = FinetuneDataset(self.dataset, self.windows("train"), cfg, "train")
        if len(ds) < cfg.batch_size:
            raise DataError(
                f"the train split has {len(ds)} chips per epoch, fewer than batch_size="
                f"{cfg.batch_size}; lower batch_size or raise train_chips_per_window"
            )
        sampler = TrainChipSampler(ds, seed=cfg.seed, shuffle=True, drop_last=True)
        return ResumableDataLoader(
            ds, batch_size=cfg.batch_size, sampler=sampler, drop_last=True, **self._kwargs()
        )

    def _eval_loader(self, split: str):
        ds = FinetuneDataset(self.dataset, self.windows(split), self.config, "eval")
        return DataLoader(
            ds,
            batch_size=self.config.batch_size,
            sampler=EvalShardSampler(ds),  # each data-parallel rank scores its share
            **self._kwargs(),
        )

    def val_dataloader(self):
        return self._eval_loader("val")

    def test_dataloader(self):
        return self._eval_loader("test")

    def predict_dataloader(self):
        self.setup()
        windows = [w for ws in self.splits.values() for w in ws]
        ds = FinetuneDataset(self.dataset, windows, self.config, "predict")
        return DataLoader(ds, batch_size=self.config.batch_size, **self._kwargs())
