"""Streaming raster input: one modality of a GeoTIFF, read block by block, never whole.

A ``RasterSource`` resolves which file band holds which model band (band descriptions, the
model's band order, or an explicit ``bands=``), splits date-major stacks (descriptions like
``2015-07-11_B04``) into time steps, and reads any pixel window (also partly or wholly outside
the raster: those pixels come back invalid) as normalised float32 with a validity mask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from earthplat.errors import SensorError
from earthplat.inference.errors import InferenceError
from earthplat.sensors import Modality, get_modality, normalize

_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T[0-9:.]+)?[_\s-]+(.+)$")


@dataclass
class Grid:
    """The pixel grid predictions are written on (the input's grid, or a bbox of it)."""

    crs: Any
    transform: Any
    """Affine of pixel (0, 0) of this grid."""
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        from rasterio.transform import array_bounds

        return array_bounds(self.height, self.width, self.transform)  # (w, s, e, n)


def _resolve_band(modality: Modality, text: str | None) -> str | None:
    """The canonical band a description names (``B04``, ``red``, ``B2_blue``), or None."""
    if not text:
        return None
    for candidate in (text, *re.split(r"[_\s]+", text)):
        try:
            return modality.band(candidate).name
        except SensorError:
            continue
    return None


@dataclass
class RasterSource:
    """One modality read from a GeoTIFF (``channels`` into the file, per time step)."""

    path: str
    modality: Modality
    bands: list[str]
    """The model's band order for this modality."""
    channels: list[list[int]] = field(default_factory=list)
    """Per time step, the 1-based file band of each model band."""
    dates: list[date] = field(default_factory=list)
    nodata: float | None = None

    @classmethod
    def open(
        cls,
        path: str,
        modality: str,
        model_bands: list[str],
        *,
        bands: list[str] | None = None,
        when: str | None = None,
    ) -> RasterSource:
        """Check the file (CRS, bands) and map model bands to file bands."""
        import warnings

        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        mod = get_modality(modality)
        wanted = list(mod.canonical(model_bands))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
        with src:
            if src.crs is None:
                raise InferenceError(
                    f"{path} has no CRS (no georeferencing), so outputs cannot be placed on the "
                    "map; georeference it first (e.g. `gdal_translate -a_srs EPSG:XXXX "
                    "-a_ullr ...`) or write a CRS and transform with rasterio"
                )
            descs = list(src.descriptions)
            count, nodata = src.count, src.nodata
        if bands is not None:
            if len(bands) != count:
                raise InferenceError(
                    f"bands= names {len(bands)} bands but {path} has {count}; give one name per "
                    "file band, in file order"
                )
            descs = list(bands)
        dated: list[tuple[str | None, str | None]] = []
        for d in descs:
            m = _DATE.match(d or "")
            dated.append((m.group(1), m.group(2)) if m else (None, d))
        names = [_resolve_band(mod, b) for _, b in dated]
        if not any(names) and bands is None:
            for order in (wanted, list(mod.band_names)):  # undescribed: a known band order
                if count == len(order):
                    names, dated = list(order), [(None, b) for b in order]
                    break
        steps = sorted({d for d, _ in dated if d}) or [None]
        channels = []
        for step in steps:
            where = {n: i + 1 for i, (n, (d, _)) in enumerate(zip(names, dated)) if d == step}
            missing = [b for b in wanted if b not in where]
            if missing:
                have = sorted(n for n in set(names) if n) or ["none recognised"]
                raise InferenceError(
                    f"{path} lacks the model's {mod.name} band(s) {', '.join(missing)} "
                    f"(file bands: {', '.join(have)}; descriptions {descs[:4]}...). The model "
                    f"needs {', '.join(wanted)}: pass bands=[...] naming each file band in "
                    "order, pick the right modality=, or use a model trained on these bands"
                )
            channels.append([where[b] for b in wanted])
        dates = [date.fromisoformat(s) for s in steps if s] or [
            date.fromisoformat(when) if when else date(2020, 6, 15)
        ]
        return cls(str(path), mod, wanted, channels, dates, nodata)

    def timestamps(self) -> np.ndarray:
        """[T, 3] day, month 0-11, year (the encoder's convention)."""
        return np.array([[d.day, d.month - 1, d.year] for d in self.dates], dtype=np.int64)

    def read(self, src: Any, row: int, col: int, height: int, width: int) -> tuple:
        """([T, C, h, w] normalised float32, [T, h, w] bool valid) of a window of ``src``
        (an open rasterio dataset); pixels outside the raster are invalid zeros."""
        from rasterio.windows import Window

        t, c = len(self.channels), len(self.bands)
        data = np.zeros((t, c, height, width), np.float32)
        valid = np.zeros((t, height, width), bool)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, src.height), min(col + width, src.width)
        if r1 <= r0 or c1 <= c0:
            return data, valid
        win = Window(c0, r0, c1 - c0, r1 - r0)
        flat = sorted({b for ch in self.channels for b in ch})
        raw = src.read(flat, window=win).astype(np.float32)  # [len(flat), h, w]
        index = {b: i for i, b in enumerate(flat)}
        ys, xs = slice(r0 - row, r1 - row), slice(c0 - col, c1 - col)
        for ti, ch in enumerate(self.channels):
            values = raw[[index[b] for b in ch]]  # [C, h, w]
            ok = np.isfinite(values).all(0)
            if self.nodata is not None and not np.isnan(self.nodata):
                ok &= ~(values == self.nodata).all(0)
            normed = normalize(values, self.modality, tuple(self.bands))
            data[ti, :, ys, xs] = np.where(ok[None], normed, 0.0)
            valid[ti, ys, xs] = ok
        return data, valid


def window_from_bbox(grid: Grid, bbox: list[float] | None) -> tuple[int, int, int, int]:
    """(row, col, height, width) of ``bbox`` (minx miny maxx maxy, the raster's CRS) clipped
    to the raster; the whole raster without a bbox. Raises when nothing is left."""
    if bbox is None:
        return 0, 0, grid.height, grid.width
    import math

    inv = ~grid.transform
    xs, ys = zip(*(inv @ (x, y) for x in bbox[0::2] for y in bbox[1::2]))
    c0, c1 = max(math.floor(min(xs)), 0), min(math.ceil(max(xs)), grid.width)
    r0, r1 = max(math.floor(min(ys)), 0), min(math.ceil(max(ys)), grid.height)
    if c1 <= c0 or r1 <= r0:
        have = tuple(round(v, 6) for v in grid.bounds)
        raise InferenceError(
            f"bbox {bbox} does not overlap the input (bounds {have} in {grid.crs}); the area "
            "to predict is empty: give a bbox in the raster's CRS that intersects it"
        )
    return r0, c0, r1 - r0, c1 - c0
