"""XYZ PNG tiles of materialised window layers (the map viewer's imagery and label overlays).

A layer file holds ``periods x bands`` bands (``LAYER.tif``) and one validity band per period
(``LAYER.mask.tif``); its ``LAYER.json`` names the modality and the bands. A tile shows one period
``t``: three bands of a composite preset of the sensor registry, each rescaled by the preset's
(low, high) range, or, for categorical layers (labels, land-cover maps), the class colours.
Invalid pixels (nodata, clouds, outside the window) are transparent, and a tile that misses the
window altogether is a fully transparent PNG, so a map can request tiles freely.

A *frame* (``render_frame``) is the whole window for one period as one PNG in EPSG:3857, at
about the window's own pixel count (``frame_geometry``): one request per time step for small
windows instead of a dozen tiles.

rio-tiler reads (Web-Mercator tile of the COG, from its overviews when zoomed out) and renders
(PNG with an alpha band). Only numpy runs here: no torch, safe inside request handlers.

What a layer's tiles are rendered from is ``layer_files`` (the ``.tif``, ``.mask.tif`` and
``.json``); their identity (``layer_identity``, from ``os.stat`` alone) keys the render cache
(``labeling.tile_cache``) and gives the layer's ``layer_version``. The parsed metadata JSON is
kept per file identity, so a request that hits the cache reads nothing from the layer.
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
from labeling.tile_cache import FileIdentity, digest, file_identity

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


def _beside(layer_tif: str | Path, suffix: str) -> Path:
    """``LAYER<suffix>`` next to ``LAYER.tif``."""
    path = Path(layer_tif)
    stem = path.name[: -len(".tif")] if path.name.endswith(".tif") else path.stem
    return path.with_name(stem + suffix)


def layer_files(layer_tif: str | Path) -> tuple[Path, Path, Path]:
    """``(LAYER.tif, LAYER.mask.tif, LAYER.json)``: the files a layer's tiles are rendered from."""
    return Path(layer_tif), _beside(layer_tif, ".mask.tif"), _beside(layer_tif, ".json")


def layer_identity(layer_tif: str | Path) -> tuple[FileIdentity, ...]:
    """The identity (``os.stat``) of each of ``layer_files``: it changes when the layer is
    materialised again, and with it every cache key and the layer's version."""
    return tuple(file_identity(p) for p in layer_files(layer_tif))


def layer_version(identity: tuple[FileIdentity, ...]) -> str:
    """A short digest of a layer's file identity (the ``?v=`` of its tile URLs)."""
    return digest(list(identity), 12)


@lru_cache(maxsize=1024)
def _read_json(identity: FileIdentity) -> dict[str, Any]:
    return json.loads(Path(identity[0]).read_text())


def layer_info(layer_tif: str | Path, *, identity: FileIdentity = None) -> dict[str, Any]:
    """The layer's metadata JSON (``LAYER.json`` beside ``LAYER.tif``), parsed once per file
    identity (shared between calls: do not modify it). ``identity``: the JSON's, when the
    caller has just taken it (``layer_identity(...)[2]``)."""
    meta = layer_files(layer_tif)[2]
    identity = identity or file_identity(meta)
    if identity is None:
        raise DataError(
            f"{Path(layer_tif)} has no metadata {meta.name}; is it a finished earthplat layer?"
        )
    return _read_json(identity)


def period_acquisitions(layer_tif: str | Path, meta: dict[str, Any]) -> list[list[str]]:
    """Per period t, the acquisition datetimes (ISO, sorted) of the scenes composited into it.

    The layer JSON names each period's items (``items``: ids of the scenes that gave it valid
    pixels) and all scenes' datetimes (``acquired``); the ids are dated through the prepare
    step's ``LAYER.prepare.json``. Without it, a period gets the ``acquired`` datetimes that
    fall inside it (all of them for a one-period layer)."""
    periods = meta.get("periods") or []
    per_period = meta.get("items") or [[] for _ in periods]
    prepared = file_identity(_beside(layer_tif, ".prepare.json"))
    dated: dict[str, str] = {}
    if prepared is not None:
        dated = {it["id"]: it["datetime"] for it in _read_json(prepared).get("items", [])}
    out = []
    for (start, end), ids in zip(periods, per_period):
        if ids and all(i in dated for i in ids):
            out.append(sorted({dated[i] for i in ids}))
        elif not ids:
            out.append([])
        elif len(periods) == 1:
            out.append(sorted(meta.get("acquired") or []))
        else:
            out.append(sorted(a for a in meta.get("acquired") or [] if start <= a < end))
    return out


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


def _layer_plan(
    layer_tif: Path,
    meta: dict[str, Any],
    *,
    t: int,
    modality: str | None,
    bands: list[str] | None,
    preset: str | None,
):
    """What to read and how to colour it: (modality, band expressions, ranges, needed bands,
    1-based band indexes of period ``t``)."""
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
    return m, exprs, ranges, needed, [1 + t * len(names) + names.index(b) for b in needed]


def _check_period(layer_tif: Path, t: int, n_periods: int) -> None:
    if not 0 <= t < n_periods:
        raise DataError(f"{layer_tif.name} has {n_periods} period(s); t={t} is out of range")


def _colourise(m: Modality, exprs, ranges, needed, array, valid, classes) -> bytes:
    """The RGBA PNG of the ``needed`` bands ``array`` ([B, H, W], masked) coloured by the plan;
    pixels not ``valid`` ([H, W]), of unknown classes or non-finite are transparent."""
    from rio_tiler.utils import render

    h, w = valid.shape
    values = {b: np.asarray(array[k].filled(0), dtype=np.float64) for k, b in enumerate(needed)}
    if m.categorical:
        codes = np.rint(values[needed[0]]).astype(np.int64)
        rgb = np.zeros((3, h, w), dtype=np.uint8)
        known = np.zeros((h, w), dtype=bool)
        for code, colour in _class_colours(m, classes).items():
            hit = codes == code
            known |= hit
            for ch in range(3):
                rgb[ch][hit] = colour[ch]
        valid &= known
    else:
        rgb = np.zeros((len(exprs), h, w), dtype=np.uint8)
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

    layer_tif = Path(layer_tif)
    if not layer_tif.is_file():
        raise DataError(f"layer file {layer_tif} does not exist")
    _, mask_tif, meta_json = layer_files(layer_tif)
    has_meta = meta_json.is_file()
    meta = layer_info(layer_tif) if has_meta or modality is None or bands is None else {}
    m, exprs, ranges, needed, indexes = _layer_plan(
        layer_tif, meta, t=t, modality=modality, bands=bands, preset=preset
    )
    try:
        with Reader(str(layer_tif)) as src:
            c = len(bands or meta["bands"])
            n_periods = int(meta["shape"][0]) if meta else src.dataset.count // c
            _check_period(layer_tif, t, n_periods)
            img = src.tile(x, y, z, tilesize=size, indexes=indexes)
        valid = img.mask > 0  # [H, W] inside the window and not nodata
        if mask_tif.is_file():
            with Reader(str(mask_tif)) as src:
                valid &= src.tile(x, y, z, tilesize=size, indexes=[t + 1]).array[0].filled(0) > 0
    except TileOutsideBounds:
        return empty_tile(size)
    return _colourise(m, exprs, ranges, needed, img.array, valid, classes)


WEB_MERCATOR = "EPSG:3857"
FRAME_MAX_PIXELS = 1024 * 1024
"""Largest frame (width x height); bigger windows are shown as XYZ tiles only."""


def frame_geometry(meta: dict[str, Any]) -> tuple[list[float], int, int] | None:
    """``(bounds, width, height)`` of a layer's frames: the window's EPSG:3857 bounds
    (minx, miny, maxx, maxy) and a raster of about the window's own pixel count (square
    pixels); None when that exceeds ``FRAME_MAX_PIXELS``. From the layer JSON alone."""
    height, width = int(meta["shape"][2]), int(meta["shape"][3])
    if width * height > FRAME_MAX_PIXELS:
        return None
    bounds, w, h = _frame_geometry(str(meta["crs"]), tuple(meta["transform"][:6]), height, width)
    return list(bounds), w, h


@lru_cache(maxsize=4096)
def _frame_geometry(crs: str, transform: tuple, height: int, width: int):
    from rasterio.transform import Affine, array_bounds
    from rasterio.warp import transform_bounds

    west, south, east, north = array_bounds(height, width, Affine(*transform))
    bounds = transform_bounds(crs, WEB_MERCATOR, west, south, east, north, densify_pts=21)
    dx, dy = bounds[2] - bounds[0], bounds[3] - bounds[1]
    pixel = (dx * dy / (width * height)) ** 0.5
    return tuple(float(v) for v in bounds), max(1, round(dx / pixel)), max(1, round(dy / pixel))


def render_frame(
    layer_tif: str | Path,
    *,
    t: int,
    preset: str | None = None,
    classes: list[dict] | None = None,
) -> bytes:
    """The PNG of the whole window for period ``t`` of a layer, in EPSG:3857 over
    ``frame_geometry``'s bounds and size; colours as ``render_tile``, transparent where
    invalid. ``DataError`` for a window too large for one frame."""
    with _IMPORT_LOCK:
        from rio_tiler.io import Reader

    layer_tif = Path(layer_tif)
    if not layer_tif.is_file():
        raise DataError(f"layer file {layer_tif} does not exist")
    meta = layer_info(layer_tif)
    geometry = frame_geometry(meta)
    if geometry is None:
        raise DataError(
            f"{layer_tif.name} is {meta['shape'][3]} x {meta['shape'][2]} px, more than a frame "
            f"holds ({FRAME_MAX_PIXELS} px); show it as XYZ tiles"
        )
    bounds, width, height = geometry
    _check_period(layer_tif, t, int(meta["shape"][0]))
    m, exprs, ranges, needed, indexes = _layer_plan(
        layer_tif, meta, t=t, modality=None, bands=None, preset=preset
    )
    part = dict(
        bbox=bounds, bounds_crs=WEB_MERCATOR, dst_crs=WEB_MERCATOR, width=width, height=height
    )
    with Reader(str(layer_tif)) as src:
        img = src.part(indexes=indexes, **part)
    valid = img.mask > 0  # [H, W]
    mask_tif = layer_files(layer_tif)[1]
    if mask_tif.is_file():
        with Reader(str(mask_tif)) as src:
            valid &= src.part(indexes=[t + 1], **part).array[0].filled(0) > 0
    return _colourise(m, exprs, ranges, needed, img.array, valid, classes)


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
