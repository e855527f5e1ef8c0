"""The pretraining ``LightningDataModule``: a pack split into train/val by window-name hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from earthplat.batch import loader_options
from earthplat.data.pack import PackedDataset
from earthplat.data.pretrain.dataset import PretrainDataset, PretrainSampler
from earthplat.data.pretrain.sampling import PretrainSamplingConfig
from earthplat.errors import PretrainConfigError
from earthplat.traincore.data import ResumableDataLoader


def split_windows(
    names: list[str], val_fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """(train, val) indices, by a hash of each window's name: deterministic, and stable when
    windows are added (a window never changes side). With ``val_fraction > 0`` and at least two
    windows, validation gets at least one."""
    if not 0.0 <= val_fraction < 1.0:
        raise PretrainConfigError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    scores = [
        int.from_bytes(hashlib.blake2b(f"{seed}/{n}".encode(), digest_size=8).digest(), "big")
        / 2**64
        for n in names
    ]
    val = [i for i, s in enumerate(scores) if s < val_fraction]
    if val_fraction > 0 and not val and len(names) > 1:
        val = [int(np.argmin(scores))]
    val_set = set(val)
    return [i for i in range(len(names)) if i not in val_set], val


@dataclass
class PretrainDataConfig:
    """A pack and how to draw pretraining batches from it."""

    path: str
    """The pack (``pack_dataset`` output)."""
    batch_size: int = 32
    """Instances per micro-batch and device."""
    num_workers: int = 2
    """DataLoader worker processes (the draws do not depend on it)."""
    val_fraction: float = 0.05
    """Fraction of windows (by name hash) held out for validation."""
    modalities: list[str] | None = None
    """Modalities to load (default: all in the pack)."""
    sampling: PretrainSamplingConfig = field(default_factory=PretrainSamplingConfig)
    """Instance draws; its seed also seeds the data order and the split."""
    pin_memory: bool = False
    """Pin batches in page-locked memory (for GPU training)."""

    def __post_init__(self) -> None:
        if isinstance(self.sampling, dict):  # from YAML
            self.sampling = PretrainSamplingConfig(**self.sampling)
        if self.batch_size < 1:
            raise PretrainConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers < 0:
            raise PretrainConfigError(f"num_workers must be >= 0, got {self.num_workers}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise PretrainConfigError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")


class PretrainDataModule(L.LightningDataModule):
    """Train/val OlmoEarth instances from a pack; the train loader resumes from checkpoints."""

    def __init__(self, config: PretrainDataConfig) -> None:
        super().__init__()
        self.config = config
        self.train_set: PretrainDataset | None = None
        self.val_set: PretrainDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        cfg = self.config
        packed = PackedDataset(cfg.path, modalities=cfg.modalities)
        train, val = split_windows(packed.names, cfg.val_fraction, cfg.sampling.seed)
        if len(train) < cfg.batch_size:
            raise PretrainConfigError(
                f"{cfg.path} leaves {len(train)} training windows, fewer than batch_size="
                f"{cfg.batch_size}; lower the batch size or pack more windows"
            )
        self.train_set = PretrainDataset(packed, cfg.sampling, indices=train)
        self.val_set = PretrainDataset(packed, cfg.sampling, indices=val) if val else None

    def _loader_kwargs(self) -> dict[str, Any]:
        return loader_options(self.config.num_workers, self.config.pin_memory)

    def train_dataloader(self) -> ResumableDataLoader:
        self.setup()
        cfg = self.config
        sampler = PretrainSampler(
            self.train_set,
            batch_size=cfg.batch_size,
            seed=cfg.sampling.seed,
            shuffle=True,
            drop_last=True,
        )
        return ResumableDataLoader(
            self.train_set,
            batch_size=cfg.batch_size,
            sampler=sampler,
            drop_last=True,
            **self._loader_kwargs(),
        )

    def val_dataloader(self) -> DataLoader | list:
        self.setup()
        if self.val_set is None:
            return []
        cfg = self.config
        sampler = PretrainSampler(
            self.val_set,
            batch_size=cfg.batch_size,
            seed=cfg.sampling.seed,
            shuffle=False,
            drop_last=False,
            fixed_epoch=0,
        )
        return DataLoader(
            self.val_set, batch_size=cfg.batch_size, sampler=sampler, **self._loader_kwargs()
        )
