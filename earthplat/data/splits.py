"""Train/val/test splits of windows that keep test pixels out of training.

Random window splits leak: neighbouring (or overlapping) windows share texture and often the
very same pixels. ``spatial_split`` therefore assigns whole grid cells to one split and then
drops every train/val window whose footprint (grown by ``buffer_m``) overlaps a test window.
``property_split`` takes the split from a window property (e.g. ``split``) instead.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from earthplat.data.window import Window
from earthplat.errors import DataError

DEFAULT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
TEST = "test"
"""The split protected from leakage: windows of other splits that overlap it are dropped."""


def _check_fractions(fractions: dict[str, float]) -> dict[str, float]:
    if not fractions or any(f < 0 for f in fractions.values()) or sum(fractions.values()) <= 0:
        raise DataError(f"split fractions {fractions} must be >= 0 with a positive sum")
    total = sum(fractions.values())
    return {k: v / total for k, v in fractions.items()}


def cell_of(window: Window, cell_size_m: float) -> tuple[str, int, int]:
    """The grid cell (CRS, column, row) holding the window's centre, in its projected CRS."""
    left, bottom, right, top = window.projected_bounds
    cx, cy = (left + right) / 2, (bottom + top) / 2
    return (window.crs, math.floor(cx / cell_size_m), math.floor(cy / cell_size_m))


def assign_cells(
    windows: list[Window], *, cell_size_m: float, fractions: dict[str, float], seed: int = 0
) -> dict[str, list[Window]]:
    """Whole cells to splits, no leakage check: cells are visited in a seeded random order and
    each goes to the split furthest below its target window count (fractions x windows)."""
    if cell_size_m <= 0:
        raise DataError(f"cell_size_m must be > 0, got {cell_size_m}")
    frac = _check_fractions(fractions)
    cells: dict[tuple[str, int, int], list[Window]] = defaultdict(list)
    for w in windows:
        cells[cell_of(w, cell_size_m)].append(w)
    keys = sorted(cells)
    order = np.random.default_rng(seed).permutation(len(keys))
    targets = {k: f * len(windows) for k, f in frac.items()}
    counts = {k: 0 for k in frac}
    out: dict[str, list[Window]] = {k: [] for k in frac}
    for i in order:
        members = cells[keys[i]]
        # ties go to the split listed first; a split with fraction 0 never wins
        name = max(
            (k for k in frac if frac[k] > 0), key=lambda k: (targets[k] - counts[k]) / targets[k]
        )
        out[name].extend(members)
        counts[name] += len(members)
    return out


def _footprint(window: Window, buffer_m: float, crs: str):
    """The window footprint (grown by ``buffer_m``) in ``crs``."""
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    geom = window.geometry().buffer(buffer_m, join_style="mitre") if buffer_m else window.geometry()
    if crs == window.crs:
        return geom
    return shape(transform_geom(window.crs, crs, geom.__geo_interface__, precision=-1))


def drop_leaks(
    splits: dict[str, list[Window]], *, buffer_m: float = 0.0, protected: str = TEST
) -> dict[str, list[Window]]:
    """Remove windows of the other splits that overlap (by more than 1 % of a pixel) a window of
    ``protected`` grown by ``buffer_m``. Windows that only touch along an edge are kept. Windows
    in another CRS are compared after reprojecting the test footprint into their CRS."""
    from shapely.strtree import STRtree

    tests = splits.get(protected, [])
    if not tests:
        return dict(splits)
    boxes = [_footprint(t, buffer_m, "EPSG:4326").envelope for t in tests]
    tree = STRtree(boxes)
    footprints: dict[tuple[int, str], object] = {}

    def footprint(j: int, crs: str):
        if (j, crs) not in footprints:
            footprints[(j, crs)] = _footprint(tests[j], buffer_m, crs)
        return footprints[(j, crs)]

    out = {protected: list(tests)}
    for name, members in splits.items():
        if name == protected:
            continue
        kept = []
        for w in members:
            hits = tree.query(w.geometry_wgs84().envelope.buffer(1e-6))
            own = w.geometry()
            eps = 0.01 * w.resolution**2
            leaks = any(own.intersection(footprint(int(j), w.crs)).area > eps for j in hits)
            if not leaks:
                kept.append(w)
        out[name] = kept
    return {k: out[k] for k in splits}


def spatial_split(
    windows: list[Window],
    *,
    cell_size_m: float,
    fractions: dict[str, float] | None = None,
    seed: int = 0,
    buffer_m: float = 0.0,
) -> dict[str, list[Window]]:
    """Leak-free spatial split: whole ``cell_size_m`` grid cells (in each window's projected CRS,
    so windows in several UTM zones work) go to one split, seeded; then every train/val window
    whose footprint overlaps a test window grown by ``buffer_m`` is dropped, so no test pixel is
    trained or validated on. Returns ``{split: windows}`` in ``fractions`` order."""
    if buffer_m < 0:
        raise DataError(f"buffer_m must be >= 0, got {buffer_m}")
    splits = assign_cells(
        windows, cell_size_m=cell_size_m, fractions=fractions or DEFAULT_FRACTIONS, seed=seed
    )
    return drop_leaks(splits, buffer_m=buffer_m)


def property_split(
    windows: list[Window], *, property: str = "split", names: tuple[str, ...] | None = None
) -> dict[str, list[Window]]:
    """Split by a window property (``properties[property]`` = ``train``/``val``/``test`` ...).
    Windows without the property are left out; ``names`` fixes which splits exist."""
    out: dict[str, list[Window]] = {n: [] for n in names or ("train", "val", "test")}
    for w in windows:
        value = w.properties.get(property)
        if value is None:
            continue
        if str(value) not in out:
            if names is not None:
                continue
            out[str(value)] = []
        out[str(value)].append(w)
    if not any(out.values()):
        raise DataError(
            f"no window has the property {property!r}; set it (e.g. train/val/test) on the "
            "windows or use a spatial split"
        )
    return out
