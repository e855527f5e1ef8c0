"""XYZ PNG tiles of materialised window layers (the map viewer's imagery and label overlays).

A layer file holds ``periods x bands`` bands (``LAYER.tif``) and one validity band per period
(``LAYER.mask.tif``); its ``LAYER.json`` names the modality and the bands. A tile shows one period
``t``: three bands of a composite preset of the sensor registry, each rescaled by the preset's
(low, high) range, or, for categorical layers (labels, land-cover maps), the class colours.
Invalid pixels (nodata, clouds, outside the window) are transparent, and a tile that misses the
window altogether is a fully transparent PNG, so a map can request tiles freely.

rio-tiler reads (Web-Mercator tile of the COG, from its overviews when zoomed out) and renders
(PNG with an alpha band). Only numpy runs here: no torch, safe inside request handlers.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from earthplat.errors import DataError, SensorError
from earthplat.sensors import Modality, get_modality

_IMPORT_LOCK = threading.Lock()
"""Serialises the first (lazy) import of rio_tiler: a map asks for many tiles at once, and
concurrent first imports in the server's threads raise ImportError (partly initialised modules)."""

DEFAULT_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
"""Colours of classes a schema gives none for (matplotlib's tab10, by class index)."""


def _hex_rgb(color: str) -> tuple[int, int, int]:
    text = color.lstrip("#")
    if len(text) != 6:
        raise DataError(f"class colour {color!r} is not #rrggbb")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def layer_info(layer_tif: str | Path) -> dict[str, Any]:
    """The layer's metadata JSON (``LAYER.json`` beside ``LAYER.tif``)."""
    path = Path(layer_tif)
    meta = path.with_suffix(".json")
    if not meta.is_file():
        raise DataError(f"{path} has no metadata {meta.name}; is it a finished earthplat layer?")
    return json.loads(meta.read_text())


def presets(modality: str | Modality) -> list[str]:
    """Composite preset names a layer of ``modality`` can be shown with (registry order)."""
    m = get_modality(modality) if isinstance(modality, str) else modality
    if m.categorical:
        return ["classes"]
    return [c.name for c in m.composites] + ["gray"]


def _band_plan(
    m: Modality, bands: list[str], preset: str | None
) -> tuple[list[str], list[tuple[float, float]]]:
    """Band expressions (``B04`` or ``VV-VH``) and (low, high) per output channel."""
    if preset in (None, "") and m.composites:
        preset = m.composites[0].name
    if preset in (None, "", "gray"):
        band = m.band(bands[0])
        # the registry's normalisation maps mean +/- 2 std to [0, 1]; show that same range
        return [band.name], [(band.mean - 2 * band.std, band.mean + 2 * band.std)]
    comp = m.composite(preset)
    return list(comp.bands), [tuple(r) for r in comp.ranges]


def _terms(expr: str) -> list[str]:
    return expr.split("-") if "-" in expr else [expr]


def _class_colours(m: Modality, classes: list[dict] | None) -> dict[int, tuple[int, int, int]]:
    if classes:
        return {
            int(c["value"]): _hex_rgb(c.get("color") or DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)])
            for i, c in enumerate(classes)
        }
    codes = sorted(m.classes) if m.classes else list(range(len(DEFAULT_PALETTE)))
    return {
        code: _hex_rgb(DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)]) for i, code in enumerate(codes)
    }


@lru_cache(maxsize=8)
def _empty_png(size: int) -> bytes:
    from rio_tiler.utils import render

    return render(
        np.zeros((3, size, size), dtype=np.uint8),
        np.zeros((size, size), dtype=np.uint8),
        img_format="PNG",
    )


def empty_tile(size: int = 256) -> bytes:
    """A fully transparent PNG tile."""
    return _empty_png(size)


def render_tile(
    layer_tif: str | Path,
    *,
    t: int,
    z: int,
    x: int,
    y: int,
    modality: str | None = None,
    bands: list[str] | None = None,
    preset: str | None = None,
    size: int = 256,
    classes: list[dict] | None = None,
) -> bytes:
    """The PNG of XYZ tile ``z/x/y`` (Web Mercator) of period ``t`` of a window layer.

    ``modality`` and ``bands`` default to the layer's metadata JSON. ``preset`` is a composite of
    the modality (``true_color``...; default: its first), ``gray`` (first band, mean +/- 2 std), or
    for categorical layers ignored: pixels take their class colour from ``classes`` (the project
    schema, ``[{"value", "label", "color"}]``) or a default palette. Unknown classes, nodata and
    pixels outside the window are transparent.
    """
    with _IMPORT_LOCK:
        from rio_tiler.errors import TileOutsideBounds
        from rio_tiler.io import Reader
        from rio_tiler.utils import render

    layer_tif = Path(layer_tif)
    if not layer_tif.is_file():
        raise DataError(f"layer file {layer_tif} does not exist")
    has_meta = layer_tif.with_suffix(".json").is_file()
    meta = layer_info(layer_tif) if has_meta or modality is None or bands is None else {}
    m = get_modality(modality or meta["modality"])
    bands = list(bands or meta["bands"])
    if m.categorical:
        exprs, ranges = [bands[0]], []
    else:
        exprs, ranges = _band_plan(m, bands, preset)
    names = [m.band(b).name for b in bands]
    needed = sorted({m.band(term).name for e in exprs for term in _terms(e)})
    missing = [b for b in needed if b not in names]
    if missing:
        raise SensorError(
            f"{layer_tif.name} lacks band(s) {', '.join(missing)} that preset {preset!r} needs; "
            f"it holds {', '.join(names)}; choose another preset ({', '.join(presets(m))})"
        )
    c = len(names)
    try:
        with Reader(str(layer_tif)) as src:
            n_periods = int(meta["shape"][0]) if meta else src.dataset.count // c
            if not 0 <= t < n_periods:
                raise DataError(
                    f"{layer_tif.name} has {n_periods} period(s); t={t} is out of range"
                )
            indexes = [1 + t * c + names.index(b) for b in needed]
            img = src.tile(x, y, z, tilesize=size, indexes=indexes)
        valid = img.mask > 0  # [H, W] inside the window and not nodata
        mask_tif = layer_tif.with_name(layer_tif.name[: -len(".tif")] + ".mask.tif")
        if mask_tif.is_file():
            with Reader(str(mask_tif)) as src:
                valid &= src.tile(x, y, z, tilesize=size, indexes=[t + 1]).array[0].filled(0) > 0
    except TileOutsideBounds:
        return empty_tile(size)
    values = {b: np.asarray(img.array[k].filled(0), dtype=np.float64) for k, b in enumerate(needed)}
    if m.categorical:
        codes = np.rint(values[needed[0]]).astype(np.int64)
        rgb = np.zeros((3, size, size), dtype=np.uint8)
        known = np.zeros((size, size), dtype=bool)
        for code, colour in _class_colours(m, classes).items():
            hit = codes == code
            known |= hit
            for ch in range(3):
                rgb[ch][hit] = colour[ch]
        valid &= known
    else:
        rgb = np.zeros((len(exprs), size, size), dtype=np.uint8)
        for ch, (expr, (lo, hi)) in enumerate(zip(exprs, ranges)):
            terms = [m.band(term).name for term in _terms(expr)]
            v = values[terms[0]] - sum(
                (values[b] for b in terms[1:]), np.zeros_like(values[terms[0]])
            )
            scaled = (v - lo) / max(hi - lo, 1e-12) * 255.0
            rgb[ch] = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
            valid &= np.isfinite(v)
        if len(exprs) == 1:  # gray: RGBA like every other tile
            rgb = np.repeat(rgb, 3, axis=0)
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    return render(rgb, alpha, img_format="PNG")


def tile_for_lonlat(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The (z, x, y) Web-Mercator tile holding a point."""
    import morecantile

    tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, z)
    return tile.z, tile.x, tile.y


RAMPS = ("viridis",)
"""Colour ramps value predictions can be shown with (rio-tiler's colormaps of those names)."""


def _ramp_lut(ramp: str) -> np.ndarray:
    """[256, 3] uint8 colours of a ramp, low to high."""
    if ramp not in RAMPS:
        raise DataError(f"unknown colour ramp {ramp!r}; choose one of {', '.join(RAMPS)}")
    with _IMPORT_LOCK:
        from rio_tiler.colormap import cmap
    table = cmap.get(ramp)
    return np.array([table[i][:3] for i in range(256)], dtype=np.uint8)


def render_prediction_tile(
    cog: str | Path,
    *,
    z: int,
    x: int,
    y: int,
    kind: str,
    legend: list[dict] | None = None,
    value_range: tuple[float, float] | None = None,
    ramp: str = "viridis",
    band: int = 1,
    size: int = 256,
) -> bytes:
    """The PNG of XYZ tile ``z/x/y`` of a prediction COG (a window's ``prediction.tif`` or an
    AOI ``mosaic.tif``).

    ``kind="classes"``: each pixel in its class colour from ``legend``
    (``[{"value", "label", "color"}]``; classes without a colour take the default palette);
    ``kind="values"``: band ``band`` through the colour ``ramp`` over ``value_range``
    (``(lo, hi)``; values outside are clamped). Nodata, NaN, classes not in the legend and
    pixels outside the raster are transparent; a tile missing the raster is fully transparent.
    Class maps are read with nearest-neighbour resampling, so zoomed-out tiles keep real classes.
    """
    with _IMPORT_LOCK:
        from rio_tiler.errors import TileOutsideBounds
        from rio_tiler.io import Reader
        from rio_tiler.utils import render

    if kind not in ("classes", "values"):
        raise DataError(f"prediction kind {kind!r} is not 'classes' or 'values'")
    cog = Path(cog)
    if not cog.is_file():
        raise DataError(f"prediction file {cog} does not exist")
    try:
        with Reader(str(cog)) as src:
            img = src.tile(x, y, z, tilesize=size, indexes=[band])
    except TileOutsideBounds:
        return empty_tile(size)
    data = np.asarray(img.array[0].filled(0), dtype=np.float64)  # [H, W]
    valid = (img.mask > 0) & np.isfinite(data)
    rgb = np.zeros((3, size, size), dtype=np.uint8)
    if kind == "classes":
        codes = np.where(valid, np.rint(data), -(2**31)).astype(np.int64)
        known = np.zeros((size, size), dtype=bool)
        for i, c in enumerate(legend or []):
            colour = _hex_rgb(c.get("color") or DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)])
            hit = codes == int(c["value"])
            known |= hit
            for ch in range(3):
                rgb[ch][hit] = colour[ch]
        valid &= known
    else:
        if value_range is None:
            raise DataError("a value prediction needs a value_range (lo, hi) to be coloured")
        lo, hi = float(value_range[0]), float(value_range[1])
        scaled = (np.where(valid, data, lo) - lo) / max(hi - lo, 1e-12)
        index = np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.intp)
        rgb = np.moveaxis(_ramp_lut(ramp)[index], -1, 0)  # [3, H, W]
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    return render(np.ascontiguousarray(rgb), alpha, img_format="PNG")
