"""OlmoEarth-style pretraining instances drawn from a pack, and their ``LightningDataModule``.

OlmoEarth v1 trains on variable instances: a patch size p in 1..8, a grid of patches whose token
count stays under a budget (2250), and a contiguous run of periods from a random start. Tokens
are one per (patch, period, band set), so an instance costs

    tokens = grid_h * grid_w * sum over modalities (T_m * band sets of m)

with T_m the run length for multitemporal modalities and 1 for static maps.

Batches must stack, so (as in OlmoEarth) the shape is drawn per batch and the position per
instance, each from its own seeded generator:

- per batch b of epoch e, ``default_rng((seed, e, b, BATCH_STREAM))``: p uniform in
  [min_patch_size, min(max_patch_size, smallest side in the batch)]; the run length T uniform in
  [min_periods, min(max_periods, shortest series in the batch, most periods one patch affords)];
  an aspect ratio log-uniform in [1/max_aspect_ratio, max_aspect_ratio]; then the largest grid
  of about that aspect with ``tokens <= token_budget`` that fits the batch's smallest window
  (a side capped by the window gives its budget to the other side);
- per instance (window i of the pack, so a window's draws do not depend on the train/val split)
  in epoch e, ``default_rng((seed, e, i))``: the crop's top-left pixel and the first period,
  uniform over the positions that fit that window.

``PretrainSampler`` (a ``ResumableSampler``, hence usable by ``ResumableDataLoader`` and resumable
from Lightning checkpoints) turns each window index into an ``InstanceKey`` carrying its batch's
shape, so every draw happens in the main process from (seed, epoch, batch, index) alone: the data
do not depend on the number of workers, on the order workers finish, or on a resume.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from earthplat.data.pack import PackedDataset
from earthplat.data.sample import prepare_modality
from earthplat.errors import PretrainConfigError
from earthplat.sensors import get_modality
from earthplat.traincore.data import ResumableDataLoader, ResumableSampler

BATCH_STREAM = 0xBA7C
"""Last word of the per-batch seed, so batch draws never reuse an instance's generator."""
SINGLE_STREAM = 0x5146
"""Last word of the shape seed of an instance read on its own (``dataset[int]``)."""
MAX_PATCH_SIZE = 8


@dataclass
class PretrainSamplingConfig:
    """How OlmoEarth-style instances are drawn from packed windows."""

    min_patch_size: int = 1
    """Smallest patch size p in pixels (>= 1)."""
    max_patch_size: int = 8
    """Largest patch size p in pixels (<= 8, the largest patch projection)."""
    token_budget: int = 2250
    """Most tokens (patch x period x band set) per instance; OlmoEarth v1 uses 2250."""
    min_periods: int = 1
    """Shortest run of periods drawn for multitemporal modalities."""
    max_periods: int = 12
    """Longest run of periods drawn for multitemporal modalities."""
    max_aspect_ratio: float = 2.0
    """Patch grids are drawn with height/width in [1/r, r] (1 = always square)."""
    seed: int = 0
    """Seed of every draw (patch size, grid, crop position, periods) and of the data order."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_patch_size <= self.max_patch_size <= MAX_PATCH_SIZE:
            raise PretrainConfigError(
                f"patch sizes must satisfy 1 <= min_patch_size <= max_patch_size <= "
                f"{MAX_PATCH_SIZE}, got {self.min_patch_size}..{self.max_patch_size}"
            )
        if self.token_budget < 1:
            raise PretrainConfigError(f"token_budget must be >= 1, got {self.token_budget}")
        if not 1 <= self.min_periods <= self.max_periods:
            raise PretrainConfigError(
                f"periods must satisfy 1 <= min_periods <= max_periods, got "
                f"{self.min_periods}..{self.max_periods}"
            )
        if not self.max_aspect_ratio >= 1.0:
            raise PretrainConfigError(f"max_aspect_ratio must be >= 1, got {self.max_aspect_ratio}")


@dataclass(frozen=True)
class InstanceShape:
    """The shape every instance of one batch shares."""

    patch_size: int
    grid_h: int
    """Patches per column."""
    grid_w: int
    """Patches per row."""
    num_periods: int
    """Run length T of multitemporal modalities (static maps always have 1)."""

    @property
    def crop_h(self) -> int:
        return self.grid_h * self.patch_size

    @property
    def crop_w(self) -> int:
        return self.grid_w * self.patch_size


@dataclass(frozen=True)
class InstanceKey:
    """What ``PretrainSampler`` yields and ``PretrainDataset`` reads: which window, which epoch,
    and the batch's shape."""

    index: int
    """Position in the ``PretrainDataset`` (not the pack)."""
    epoch: int
    shape: InstanceShape


@dataclass(frozen=True)
class InstancePlacement:
    """Where one instance sits in its window."""

    row0: int
    col0: int
    period0: int


class OlmoEarthInstanceSampler:
    """Draws instance shapes (per batch) and placements (per instance); pure, seeded logic.

    ``sizes`` [N, 2] true (height, width) and ``periods`` [N] shortest multitemporal series of
    each window, indexed as the caller indexes its windows (``PretrainDataset`` positions);
    ``band_sets`` maps each modality to its number of band sets holding a packed band and
    ``multitemporal`` to whether it is a time series. The generators come from the caller, so
    the seeding policy lives in one place (``PretrainDataset``).
    """

    def __init__(
        self,
        config: PretrainSamplingConfig,
        *,
        sizes: np.ndarray,
        periods: np.ndarray,
        band_sets: dict[str, int],
        multitemporal: dict[str, bool],
    ) -> None:
        self.config = config
        self.sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)  # [N, 2]
        self.periods = np.asarray(periods, dtype=np.int64).reshape(-1)  # [N]
        self.per_period = sum(n for m, n in band_sets.items() if multitemporal[m])
        self.static = sum(n for m, n in band_sets.items() if not multitemporal[m])
        if self.per_period + self.static == 0:
            raise PretrainConfigError("no modality with a band set to tokenise")
        smallest = self.per_period * config.min_periods + self.static
        if smallest > config.token_budget:
            raise PretrainConfigError(
                f"one patch with {config.min_periods} period(s) already costs {smallest} tokens, "
                f"over token_budget={config.token_budget}; raise the budget or drop modalities"
            )
        if len(self.sizes) and int(self.sizes.min()) < config.min_patch_size:
            raise PretrainConfigError(
                f"a window is {int(self.sizes.min())} px on a side, smaller than "
                f"min_patch_size={config.min_patch_size}"
            )
        if self.per_period and len(self.periods) and int(self.periods.min()) < config.min_periods:
            raise PretrainConfigError(
                f"a window has {int(self.periods.min())} period(s), fewer than "
                f"min_periods={config.min_periods}"
            )

    def tokens(self, shape: InstanceShape) -> int:
        per_position = self.per_period * shape.num_periods + self.static
        return shape.grid_h * shape.grid_w * per_position

    def draw_shape(
        self, rng: np.random.Generator, indices: list[int] | np.ndarray
    ) -> InstanceShape:
        """A shape that fits every window in ``indices`` (positions) under the budget."""
        cfg = self.config
        idx = np.asarray(indices, dtype=np.int64)
        max_h, max_w = (int(x) for x in self.sizes[idx].min(axis=0))
        p = int(rng.integers(cfg.min_patch_size, min(cfg.max_patch_size, max_h, max_w) + 1))
        if self.per_period:
            fit = (cfg.token_budget - self.static) // self.per_period
            t_hi = min(cfg.max_periods, int(self.periods[idx].min()), fit)
            t = int(rng.integers(cfg.min_periods, t_hi + 1))
        else:
            t = 1
        positions = cfg.token_budget // (self.per_period * t + self.static)  # patches allowed
        gh_max, gw_max = max_h // p, max_w // p
        log_r = math.log(cfg.max_aspect_ratio)
        aspect = math.exp(rng.uniform(-log_r, log_r)) if log_r > 0 else 1.0
        gh = max(1, min(int(math.sqrt(positions * aspect)), gh_max, positions))
        gw = max(1, min(positions // gh, gw_max))
        gh = max(1, min(positions // gw, gh_max))  # give a capped width's budget back
        return InstanceShape(p, gh, gw, t)

    def draw_placement(
        self, rng: np.random.Generator, index: int, shape: InstanceShape
    ) -> InstancePlacement:
        h, w = (int(x) for x in self.sizes[index])
        if shape.crop_h > h or shape.crop_w > w:
            raise PretrainConfigError(
                f"a {shape.crop_h}x{shape.crop_w} crop does not fit window {index} ({h}x{w}); "
                "draw shapes with the batch's windows"
            )
        t = int(self.periods[index]) if self.per_period else 1
        return InstancePlacement(
            row0=int(rng.integers(0, h - shape.crop_h + 1)),
            col0=int(rng.integers(0, w - shape.crop_w + 1)),
            period0=int(rng.integers(0, max(t - shape.num_periods, 0) + 1)),
        )


def _band_set_count(modality: str, bands: list[str]) -> int:
    present = set(bands)
    return sum(1 for bs in get_modality(modality).band_sets if present & set(bs))


class PretrainDataset(TorchDataset):
    """Map-style dataset of OlmoEarth instances over some windows of a pack.

    ``dataset[InstanceKey]`` (what ``PretrainSampler`` yields) reads that key's crop;
    ``dataset[j]`` draws a shape for window j alone (for inspection; batches need the sampler).
    Each instance::

        {"window": str, "index": int (pack index), "patch_size": int,
         "modalities": {name: {"data": float32 [T, C, h, w] normalised, 0 where invalid,
                               "valid": bool [T, h, w], "timestamps": int32 [T, 3],
                               "bands": list[str]}}}

    Continuous modalities are normalised with ``earthplat.sensors.normalize`` (mean +/- 2 std to
    [0, 1]); categorical maps keep their class codes, as float32.
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
            band_sets={m: _band_set_count(m, info[m].bands) for m in mods},
            multitemporal=multitemporal,
        )

    def __len__(self) -> int:
        return len(self.indices)

    def draw_shape(self, epoch: int, batch_index: int, positions: list[int]) -> InstanceShape:
        """The shape of batch ``batch_index`` of ``epoch`` holding dataset ``positions``."""
        rng = np.random.default_rng((self.config.seed, epoch, batch_index, BATCH_STREAM))
        return self.sampler.draw_shape(rng, positions)

    def __getitem__(self, key: InstanceKey | int) -> dict[str, Any]:
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
        out: dict[str, Any] = {
            "window": raw["window"],
            "index": pack_index,
            "patch_size": shape.patch_size,
            "modalities": {},
        }
        for m, d in raw["modalities"].items():
            data = prepare_modality(d["data"], d["valid"], m, d["bands"])  # [T, C, h, w]
            out["modalities"][m] = {
                "data": torch.from_numpy(data),
                "valid": torch.from_numpy(d["valid"]),  # [T, h, w]
                "timestamps": torch.from_numpy(d["timestamps"]),  # [T, 3]
                "bands": list(d["bands"]),
            }
        return out


def collate_instances(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack instances that share a shape (``PretrainSampler`` guarantees it) into a batch::

    {"window": list[str], "index": int64 [B], "patch_size": int,
     "modalities": {name: {"data": [B, T, C, h, w], "valid": [B, T, h, w],
                           "timestamps": [B, T, 3], "bands": list[str]}}}
    """
    sizes = {it["patch_size"] for it in items}
    if len(sizes) != 1:
        raise PretrainConfigError(
            f"a batch mixes patch sizes {sorted(sizes)}; batch with PretrainSampler, which draws "
            "one shape per batch"
        )
    out: dict[str, Any] = {
        "window": [it["window"] for it in items],
        "index": torch.tensor([it["index"] for it in items]),
        "patch_size": sizes.pop(),
        "modalities": {},
    }
    for m, first in items[0]["modalities"].items():
        out["modalities"][m] = {
            k: torch.stack([it["modalities"][m][k] for it in items])
            for k in ("data", "valid", "timestamps")
        }
        out["modalities"][m]["bands"] = first["bands"]
    return out


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


# --- data module ------------------------------------------------------------------------------
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
        workers = self.config.num_workers
        return dict(
            num_workers=workers,
            collate_fn=collate_instances,
            persistent_workers=workers > 0,
            pin_memory=self.config.pin_memory,
        )

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
