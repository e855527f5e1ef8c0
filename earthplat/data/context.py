"""Context overviews: a low-resolution view of the imagery around a window.

A labeller sees a window (say 64 x 64 px at 10 m) with nothing around it. The context overview
of an imagery layer is a COG in the window's CRS covering the window grown by a margin on every
side (default: two window sizes, so 5x the width and height) at a coarser pixel size (default 4x
the window's), read from the same source items the layer was materialised from. It shows one
period: the one with the highest valid fraction over the context extent.

Files, beside the layer (``LAYER`` = the layer's name)::

    LAYER.context.tif        data COG, one period x the layer's bands
    LAYER.context.mask.tif   validity COG (1 = observed)
    LAYER.context.json       a layer's metadata (one period) plus ``context``: which layer, the
                             period shown, margin and factor

They are a layer named ``LAYER.context`` in every respect (``LayerReader`` and
``labeling.tiles.render_tile`` read them unchanged), except that ``Dataset.layers`` does not
list them: a context is not a model input. Pixels are read, composited and judged valid exactly
as the layer's own (``earthplat.data.materialize`` on a coarser ``Window``, through
``earthplat.data.warp``): inside an item's footprint, not nodata, finite, not cloud. Pixels no
item covers are invalid, never zeros. Categorical layers (labels, class maps) get no context.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from earthplat.data.dataset import CONTEXT_SUFFIX, Dataset
from earthplat.data.materialize import LayerArrays, LayerSpec, materialize_arrays, write_layer
from earthplat.data.sources.base import Item
from earthplat.data.window import Window
from earthplat.errors import DataError, NoDataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContextConfig:
    """How a window's context overview is built."""

    margin: float = 2.0
    """Extent added on every side, in window sizes (2: the overview is 5x the window's width
    and height)."""
    factor: float = 4.0
    """Overview pixel size over the window's pixel size (4: 40 m pixels for a 10 m window)."""
    max_size: int = 2048
    """Most pixels along either side of the overview; a larger one gets a coarser ``factor``
    (so a very large window does not make a huge overview)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.margin) and self.margin >= 0):
            raise DataError(f"context margin {self.margin} must be a window count >= 0")
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise DataError(
                f"context factor {self.factor} must be >= 1 (the overview's pixels are the "
                "window's times this)"
            )
        if self.max_size < 1:
            raise DataError(f"context max_size {self.max_size} must be >= 1 pixel")


def context_layer(layer: str) -> str:
    """The name under which layer ``layer``'s context overview is stored (``s2.context``)."""
    return f"{layer}{CONTEXT_SUFFIX}"


def context_window(window: Window, config: ContextConfig = ContextConfig()) -> Window:
    """The overview's grid: the window's CRS, its extent grown by ``margin`` window sizes on
    every side, pixels ``factor`` times the window's.

    The grid starts at the grown extent's top-left corner; where the grown extent is not a
    whole number of overview pixels, the last column and row reach past it (by less than one
    overview pixel)."""
    left, bottom, right, top = window.projected_bounds
    mx, my = config.margin * (right - left), config.margin * (top - bottom)
    width_m, height_m = right - left + 2 * mx, top - bottom + 2 * my
    factor = max(config.factor, max(width_m, height_m) / (window.resolution * config.max_size))
    res = window.resolution * factor
    # a tolerance so that 3200 m / 40 m is 80 pixels, not 81 from a rounding error
    cols = max(1, math.ceil(width_m / res - 1e-6))
    rows = max(1, math.ceil(height_m / res - 1e-6))
    return Window(
        name=window.name,
        crs=window.crs,
        resolution=res,
        bounds=(0, 0, cols, rows),
        start=window.start,
        end=window.end,
        group=window.group,
        origin=(left - mx, top + my),
    )


def _best_period(arrays: LayerArrays) -> int:
    """The period with the highest valid fraction (the earliest among equals)."""
    fractions = arrays.valid.reshape(arrays.valid.shape[0], -1).mean(axis=1)  # [T]
    return int(np.argmax(fractions))


def build_context(
    dataset: Dataset,
    window: Window,
    layer: LayerSpec,
    items: list[Item],
    source: dict[str, Any],
    config: ContextConfig = ContextConfig(),
) -> dict[str, Any] | None:
    """Build and write the context overview of ``window``'s layer ``layer`` from ``items`` (the
    items the layer was materialised from); returns its metadata, or ``None`` for a categorical
    layer (no overview). Raises ``NoDataError`` when no item has a valid pixel around the
    window."""
    if layer.spec.categorical:
        return None
    grid = context_window(window, config)
    name = context_layer(layer.name)
    stale = dataset.layer_path(window, name, ".json")
    if dataset.fs.exists(stale):  # a rebuild: the old overview is not finished any more
        dataset.fs.rm(stale)
    arrays = materialize_arrays(grid, items, layer)
    if not arrays.valid.any():
        raise NoDataError(
            f"window {window.name}: no {layer.spec.name} item holds a valid pixel around the "
            f"window ({grid.width} x {grid.height} px at {grid.resolution:g} m), so layer "
            f"{layer.name!r} has no context overview"
        )
    p = _best_period(arrays)
    one = LayerArrays(
        data=arrays.data[p : p + 1],  # [1, C, H, W]
        valid=arrays.valid[p : p + 1],  # [1, H, W]
        bands=arrays.bands,
        periods=arrays.periods[p : p + 1],
        items_per_period=arrays.items_per_period[p : p + 1],
    )
    used = set(one.items_per_period[0])
    p0, p1 = arrays.periods[p]
    spec = LayerSpec(
        name=name,
        modality=layer.modality,
        bands=arrays.bands,
        period=layer.period,
        max_periods=layer.max_periods,
        method=layer.method,
        resampling=layer.resampling,
    )
    extra = {
        "context": {
            "layer": layer.name,
            "period_index": p,
            "period": [p0.isoformat(), p1.isoformat()],
            "margin": config.margin,
            "factor": grid.resolution / window.resolution,
            "resolution": grid.resolution,
            "window_bounds": list(window.projected_bounds),
        }
    }
    return write_layer(
        dataset, grid, spec, one, [it for it in items if it.id in used], source, extra=extra
    )


def build_context_quietly(
    dataset: Dataset,
    window: Window,
    layer: LayerSpec,
    items: list[Item],
    source: dict[str, Any],
    config: ContextConfig = ContextConfig(),
) -> dict[str, Any] | None:
    """``build_context``, where a failure is logged as a warning and returns ``None``: the
    overview is a convenience for labellers and must never fail the layer it belongs to."""
    try:
        return build_context(dataset, window, layer, items, source, config)
    except Exception as e:  # any failure here must leave the layer standing
        log.warning(
            "window %s: no context overview for layer %r (%s: %s); the layer itself is fine. "
            "Re-materialise it with force to try again.",
            window.name,
            layer.name,
            type(e).__name__,
            e,
        )
        return None


def context_metadata(dataset: Dataset, window: Window | str, layer: str) -> dict[str, Any] | None:
    """The metadata of layer ``layer``'s finished context overview, or ``None`` without one."""
    name = context_layer(layer)
    return dataset.layer_metadata(window, name) if dataset.layer_done(window, name) else None


def context_bounds_wgs84(meta: dict[str, Any]) -> list[float]:
    """(min lon, min lat, max lon, max lat) of an overview, from its metadata."""
    from affine import Affine
    from rasterio.warp import transform_bounds

    t = Affine(*meta["transform"])
    h, w = meta["shape"][2:]
    left, top = t.c, t.f
    right, bottom = t.c + t.a * w, t.f + t.e * h
    return list(transform_bounds(meta["crs"], "EPSG:4326", left, bottom, right, top))
