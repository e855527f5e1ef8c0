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

from typing import Any

from earthplat.data.pretrain.sampling import (
    InstanceKey,
    InstancePlacement,
    InstanceShape,
    OlmoEarthInstanceSampler,
    PretrainSamplingConfig,
)

__all__ = [
    "InstanceKey",
    "InstancePlacement",
    "InstanceShape",
    "OlmoEarthInstanceSampler",
    "PretrainDataConfig",
    "PretrainDataModule",
    "PretrainDataset",
    "PretrainSampler",
    "PretrainSamplingConfig",
    "split_windows",
]


def __getattr__(name: str) -> Any:
    # the dataset needs torch and the data module Lightning: loaded when first asked for
    if name in ("PretrainDataset", "PretrainSampler"):
        from earthplat.data.pretrain import dataset

        return getattr(dataset, name)
    if name in ("PretrainDataConfig", "PretrainDataModule", "split_windows"):
        from earthplat.data.pretrain import datamodule

        return getattr(datamodule, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
