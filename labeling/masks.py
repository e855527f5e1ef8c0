"""Painted class masks: annotations that are pixels of their window's grid, not drawn shapes.

A mask is run lengths over the window's pixels in row-major order::

    {"encoding": "rle", "shape": [height, width], "counts": [unset, set, unset, ...]}

The runs alternate unset/set and start with unset (so the first count is 0 when the first pixel
is set); they sum to ``height * width``. Stored masks are canonical: no zero-length run except
a leading one (:func:`encode` of :func:`decode`), so equal pixels give equal JSON.

Why pixels: a brush paints the window's 10 m cells, and a WGS84 polygon of those cells would
not rasterize back to the same cells everywhere (pixel-centre rules, reprojection). The export
burns the mask's own pixels (:func:`burn`); the annotation's ``geometry`` is only the outline
(:func:`outline`), so everything that reads geometries (lists, GeoJSON, GeoParquet) still works.

The grid is always the window's (``WindowRecord.to_window()``: its size, transform and CRS);
nothing here recomputes it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from earthplat.data.window import Window
from earthplat.errors import DataError
from earthplat.tasks import TASKS, TaskKind
from labeling.services.errors import InvalidInputError, TooLargeError

ENCODING = "rle"
"""The one mask encoding: run lengths, row-major, alternating unset/set from unset."""


def accepts_masks(task: TaskKind) -> bool:
    """Masks label per-pixel classes (the registry's ``pixel_classes``)."""
    return task.pixel_classes


def mask_tasks() -> list[str]:
    """The registry's tasks that take painted masks (``earthplat.tasks``)."""
    return [name for name, kind in TASKS.items() if accepts_masks(kind)]


def check_task(task_type: str) -> None:
    """A 422 naming the tools that fit when ``task_type`` does not label per-pixel classes."""
    kind = TASKS[task_type]
    if accepts_masks(kind):
        return
    if kind.target == "boxes":
        tools = "draw a box or point per object with its class"
    elif kind.per_window:
        what = "class" if kind.class_task else "value"
        tools = f"label the window's {what} with a point or polygon"
    elif kind.target == "none":
        tools = "this task takes no labels"
    else:
        tools = "draw polygons with a numeric value"
    raise InvalidInputError(
        f"a painted mask labels a class per pixel; a {task_type} project labels {kind.description}",
        fix=f"{tools}; painted masks (brush, eraser, fill) are for "
        f"{', '.join(mask_tasks())} projects",
    )


# --- run lengths ----------------------------------------------------------------------------
def encode(pixels: np.ndarray) -> dict[str, Any]:
    """The canonical RLE of a boolean [H, W] array."""
    pixels = np.asarray(pixels, dtype=bool)
    if pixels.ndim != 2:
        raise ValueError(f"a mask is 2-D [H, W], not {pixels.shape}")
    flat = pixels.reshape(-1)
    if flat.size == 0:
        return {"encoding": ENCODING, "shape": list(pixels.shape), "counts": []}
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], edges, [flat.size]))).tolist()
    if flat[0]:
        counts = [0, *counts]
    return {"encoding": ENCODING, "shape": [int(s) for s in pixels.shape], "counts": counts}


def decode(mask: dict[str, Any]) -> np.ndarray:
    """The boolean [H, W] pixels of a (checked) mask."""
    height, width = (int(s) for s in mask["shape"])
    counts = np.asarray(mask["counts"], dtype=np.int64)
    runs = np.arange(counts.size) % 2 == 1  # odd runs are set
    return np.repeat(runs, counts).reshape(height, width)


def check_mask(mask: Any, window: Window, *, max_bytes: int) -> dict[str, Any]:
    """``mask`` checked against ``window``'s grid and returned canonical; else
    ``InvalidInputError`` (422) naming the fix, or ``TooLargeError`` (413) over ``max_bytes``
    of compact JSON (the annotation size limit)."""
    grid = [window.height, window.width]
    fix = (
        f'send {{"encoding": "rle", "shape": {grid}, "counts": [...]}}: run lengths over the '
        "window's pixels, row by row, alternating unset/set and starting with unset"
    )
    if not isinstance(mask, dict):
        raise InvalidInputError("mask must be an object", fix=fix)
    size = len(json.dumps(mask, separators=(",", ":")))
    if size > max_bytes:
        raise TooLargeError(
            f"the mask is {size:,} bytes of JSON; the limit is {max_bytes:,}",
            fix="split the painting into several annotations, or raise "
            "EARTHPLAT_ANNOTATION_MAX_BYTES",
        )
    if mask.get("encoding") != ENCODING:
        raise InvalidInputError(
            f"mask encoding {mask.get('encoding')!r} is not supported; use 'rle'", fix=fix
        )
    shape, counts = mask.get("shape"), mask.get("counts")
    if not isinstance(shape, list | tuple) or [_int(s) for s in shape] != grid:
        raise InvalidInputError(
            f"mask shape {shape!r} is not the grid of window {window.name}: {grid} (rows, columns)",
            fix=f"paint on the window's own pixel grid: shape {grid}",
        )
    if not isinstance(counts, list | tuple) or not all(_int(c) is not None for c in counts):
        raise InvalidInputError("mask counts must be a list of integers", fix=fix)
    if any(c < 0 for c in counts):
        raise InvalidInputError("mask counts must not be negative", fix=fix)
    total = sum(counts)
    if total != grid[0] * grid[1]:
        raise InvalidInputError(
            f"mask counts sum to {total:,}, the window has {grid[0] * grid[1]:,} pixels "
            f"({grid[0]} x {grid[1]})",
            fix="cover every pixel of the window exactly once: " + fix,
        )
    if sum(counts[1::2]) == 0:
        raise InvalidInputError(
            "the mask sets no pixel",
            fix="delete the annotation instead of saving an empty mask",
        )
    return encode(decode({"shape": grid, "counts": counts}))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def union(masks: list[dict[str, Any]]) -> dict[str, Any]:
    """The pixels set in any of ``masks`` (one grid)."""
    shapes = {tuple(m["shape"]) for m in masks}
    if len(shapes) != 1:
        raise InvalidInputError(f"masks on different grids {sorted(shapes)} cannot be merged")
    return encode(np.logical_or.reduce([decode(m) for m in masks]))


# --- pixels <-> the world -------------------------------------------------------------------
def outline(
    mask: dict[str, Any], window: Window, *, max_bytes: int | None = None
) -> dict[str, Any]:
    """The set pixels as a WGS84 GeoJSON MultiPolygon: pixel edges vectorised on the window's
    grid (4-connected regions, holes kept), every vertex reprojected from the window's CRS in
    one vectorised call.

    The mask is the label; its outline is what maps and GeoJSON exports show. A noisy mask's
    exact outline can be many times the mask's size, so beyond ``max_bytes`` of GeoJSON it is
    simplified to within a pixel, and beyond that again it is the set pixels' bounding box."""
    import shapely
    from rasterio.features import shapes
    from shapely.geometry import box, shape

    pixels = decode(mask)
    regions = shapes(
        pixels.astype(np.uint8), mask=pixels, connectivity=4, transform=window.transform
    )
    projected = shapely.MultiPolygon([shape(geom) for geom, _ in regions])
    geometry = _to_wgs84(projected, window)
    if max_bytes is None or _size(geometry) <= max_bytes:
        return geometry
    simpler = shapely.simplify(projected, window.resolution, preserve_topology=True)
    if simpler.geom_type == "Polygon":
        simpler = shapely.MultiPolygon([simpler])
    geometry = _to_wgs84(simpler, window)
    if _size(geometry) <= max_bytes:
        return geometry
    return _to_wgs84(shapely.MultiPolygon([box(*projected.bounds)]), window)


def _size(geometry: dict[str, Any]) -> int:
    return len(json.dumps(geometry, separators=(",", ":")))


def _to_wgs84(projected, window: Window) -> dict[str, Any]:
    """A MultiPolygon in the window's CRS as WGS84 GeoJSON (valid: a reprojection can nudge
    touching corners, and only the polygonal part is kept)."""
    import shapely
    from rasterio.warp import transform
    from shapely.geometry import mapping

    def to_wgs84(xy: np.ndarray) -> np.ndarray:  # [N, 2] metres -> [N, 2] lon/lat
        lon, lat = transform(window.crs, "EPSG:4326", xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    multi = shapely.transform(projected, to_wgs84)
    if not multi.is_valid:  # reprojection can nudge touching corners; keep the polygonal part
        fixed = shapely.make_valid(multi)
        parts = shapely.get_parts(fixed)
        polygons = [
            p
            for g in parts
            if g.geom_type in ("Polygon", "MultiPolygon")
            for p in shapely.get_parts(g)
        ]
        multi = shapely.MultiPolygon(polygons)
    return dict(mapping(multi))


def burn(raster: np.ndarray, mask: dict[str, Any], value: float, *, window: Window) -> None:
    """Set ``raster``'s [H, W] pixels that ``mask`` paints to ``value``, in place, exactly."""
    grid = (window.height, window.width)
    if tuple(mask["shape"]) != grid or raster.shape != grid:
        raise DataError(
            f"window {window.name}: a mask of shape {tuple(mask['shape'])} does not fit its "
            f"grid {grid}; the window's grid changed after painting, so repaint the mask"
        )
    raster[decode(mask)] = value
