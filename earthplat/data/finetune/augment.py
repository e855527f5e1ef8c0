"""Chips of window arrays and their seeded augmentation: crops, flips and rot90 applied alike to
inputs, pixel targets and boxes."""

from __future__ import annotations

import numpy as np

AUG_STREAM = 0xA06
"""Seed stream of the flips and rotations (with the run's seed, the epoch and the index)."""
CROP_STREAM = 0xC40
"""Seed stream of the random chip offsets."""


def tile_starts(size: int, chip: int) -> list[int]:
    """Start offsets of non-overlapping chips along one axis; the last is flush with the edge."""
    if size <= chip:
        return [0]
    starts = list(range(0, size - chip + 1, chip))
    if starts[-1] + chip < size:
        starts.append(size - chip)
    return starts


def crop(arr: np.ndarray, r0: int, c0: int, size: int, fill) -> np.ndarray:
    """[..., size, size] crop at (r0, c0); parts outside ``arr`` are ``fill``."""
    h, w = arr.shape[-2:]
    out = np.full((*arr.shape[:-2], size, size), fill, dtype=arr.dtype)
    rh, cw = min(size, h - r0), min(size, w - c0)
    out[..., :rh, :cw] = arr[..., r0 : r0 + rh, c0 : c0 + cw]
    return out


def augment_array(arr: np.ndarray, flip: bool, k: int) -> np.ndarray:
    """A horizontal flip (when ``flip``), then ``k`` counter-clockwise quarter turns."""
    if flip:
        arr = arr[..., ::-1]
    return np.ascontiguousarray(np.rot90(arr, k, axes=(-2, -1)))


def augment_boxes(boxes: np.ndarray, size: int, flip: bool, k: int) -> np.ndarray:
    """Boxes [n, 4] (x0, y0, x1, y1) through the same flip + rot90 as ``augment_array``."""
    b = boxes.copy()
    if flip:  # x -> size - x
        b = np.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], axis=1)
    for _ in range(k):  # np.rot90 (counter-clockwise): (x, y) -> (y, size - x)
        b = np.stack([b[:, 1], size - b[:, 2], b[:, 3], size - b[:, 0]], axis=1)
    return b
