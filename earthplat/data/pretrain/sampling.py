"""The shapes and positions of OlmoEarth pretraining instances, drawn from seeded generators
(see ``earthplat.data.pretrain``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from earthplat.errors import PretrainConfigError
from earthplat.sensors import get_modality

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


def band_set_count(modality: str, bands: list[str]) -> int:
    present = set(bands)
    return sum(1 for bs in get_modality(modality).band_sets if present & set(bs))
