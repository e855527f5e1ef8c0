"""``PretrainDataset``: OlmoEarth instances read from a pack, and ``PretrainSampler``, which
draws one shape per batch (see ``earthplat.data.pretrain``)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from earthplat.batch import ModalityData, Sample, prepare_modality
from earthplat.data.pack import PackedDataset
from earthplat.data.pretrain.sampling import (
    BATCH_STREAM,
    SINGLE_STREAM,
    InstanceKey,
    InstanceShape,
    OlmoEarthInstanceSampler,
    PretrainSamplingConfig,
    band_set_count,
)
from earthplat.errors import PretrainConfigError
from earthplat.traincore.data import ResumableSampler


class PretrainDataset(TorchDataset):
    """Map-style dataset of OlmoEarth instances over some windows of a pack.

    ``dataset[InstanceKey]`` (what ``PretrainSampler`` yields) reads that key's crop;
    ``dataset[j]`` draws a shape for window j alone (for inspection; batches need the sampler).
    Each instance is an ``earthplat.batch.Sample`` with its pack ``index`` and ``patch_size``;
    its modalities are ``prepare_modality`` output (continuous values normalised, mean +/- 2
    std to [0, 1]; categorical maps keep their class codes, as float32).
    """

    def __init__(
        self,
        packed: PackedDataset | str,
        config: PretrainSamplingConfig,
        *,
        indices: list[int] | None = None,
        modalities: list[str] | None = None,
    ) -> None:
        self.packed = (
            packed
            if isinstance(packed, PackedDataset)
            else PackedDataset(packed, modalities=modalities)
        )
        if modalities is not None and isinstance(packed, PackedDataset):
            self.packed = PackedDataset(packed.path, modalities=modalities)
        self.config = config
        self.indices = list(range(len(self.packed))) if indices is None else list(indices)
        self.epoch = 0
        info = self.packed.info.modalities
        mods = self.packed.modalities
        multitemporal = {m: info[m].multitemporal for m in mods}
        series = [self.packed.num_periods[m] for m in mods if multitemporal[m]]
        periods = np.min(np.stack(series), axis=0) if series else np.ones(len(self.packed))
        self.sampler = OlmoEarthInstanceSampler(
            config,
            sizes=self.packed.sizes[self.indices],
            periods=periods[self.indices],
            band_sets={m: band_set_count(m, info[m].bands) for m in mods},
            multitemporal=multitemporal,
        )

    def __len__(self) -> int:
        return len(self.indices)

    def draw_shape(self, epoch: int, batch_index: int, positions: list[int]) -> InstanceShape:
        """The shape of batch ``batch_index`` of ``epoch`` holding dataset ``positions``."""
        rng = np.random.default_rng((self.config.seed, epoch, batch_index, BATCH_STREAM))
        return self.sampler.draw_shape(rng, positions)

    def __getitem__(self, key: InstanceKey | int) -> Sample:
        if not isinstance(key, InstanceKey):
            j = int(key)
            rng = np.random.default_rng((self.config.seed, self.epoch, j, SINGLE_STREAM))
            key = InstanceKey(j, self.epoch, self.sampler.draw_shape(rng, [j]))
        pack_index = self.indices[key.index]
        rng = np.random.default_rng((self.config.seed, key.epoch, pack_index))
        shape = key.shape
        at = self.sampler.draw_placement(rng, key.index, shape)
        raw = self.packed.read(
            pack_index,
            rows=slice(at.row0, at.row0 + shape.crop_h),
            cols=slice(at.col0, at.col0 + shape.crop_w),
            periods=slice(at.period0, at.period0 + shape.num_periods),
        )
        sample = Sample(window=raw["window"], index=pack_index, patch_size=shape.patch_size)
        for m, d in raw["modalities"].items():
            data = prepare_modality(d["data"], d["valid"], m, d["bands"])  # [T, C, h, w]
            sample.modalities[m] = ModalityData(
                torch.from_numpy(data),
                torch.from_numpy(d["valid"]),  # [T, h, w]
                list(d["bands"]),
                torch.from_numpy(d["timestamps"]),  # [T, 3]
            )
        return sample


class PretrainSampler(ResumableSampler):
    """``ResumableSampler`` order, yielding ``InstanceKey``s whose shape is drawn per batch.

    Consecutive runs of ``batch_size`` keys share one ``InstanceShape``; use it with a loader of
    the same ``batch_size`` (``ResumableDataLoader(..., sampler=this)``). Resuming skips whole
    batches, so the batch numbering, hence every draw, matches an uninterrupted run.
    ``fixed_epoch`` pins the draws (validation sees the same crops every epoch).
    """

    def __init__(
        self,
        dataset: PretrainDataset,
        *,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        fixed_epoch: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        super().__init__(
            dataset,
            seed=seed,
            shuffle=shuffle,
            drop_last=drop_last,
            num_replicas=num_replicas,
            rank=rank,
        )
        if batch_size < 1:
            raise PretrainConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.fixed_epoch = fixed_epoch
        if fixed_epoch is not None:
            self.epoch = fixed_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch if self.fixed_epoch is None else self.fixed_epoch

    def __iter__(self):
        order = self.indices()
        skip, self._skip_samples = self._skip_samples, 0
        if skip % self.batch_size:
            raise PretrainConfigError(
                f"cannot resume {skip} samples into an epoch: not a whole number of batches of "
                f"{self.batch_size}"
            )
        dataset: PretrainDataset = self.data_source  # type: ignore[assignment]
        for start in range(skip, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            shape = dataset.draw_shape(self.epoch, start // self.batch_size, chunk)
            for j in chunk:
                yield InstanceKey(j, self.epoch, shape)
