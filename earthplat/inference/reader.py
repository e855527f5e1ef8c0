"""Streaming input: one modality of a GeoTIFF (``RasterSource``) or of a dataset layer
(``LayerSource``), read block by block, never whole.

Both resolve which stored band feeds which model band, give the time steps and their
timestamps, and read any pixel window (also partly or wholly outside the data: those pixels
come back invalid) as what the model reads: ``earthplat.batch.prepare_modality`` output
(normalised float32, 0 where invalid) with a validity mask, fitted to the model's period count
(``earthplat.batch.fit_periods``), as training feeds it.

A ``RasterSource`` maps file bands with ``earthplat.data.sources.bands`` (the mapping ingest
uses) and takes validity from the file's own masks (nodata, internal mask or alpha) and
finiteness. A ``LayerSource`` reads through ``earthplat.data.layer.LayerReader``: the layer's
bands and periods from its JSON, validity from its mask COG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from earthplat.batch import fit_periods, prepare_modality
from earthplat.data.warp import read_masks
from earthplat.errors import DataError
from earthplat.inference.errors import InferenceError
from earthplat.sensors import Modality, get_modality


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


def _missing_bands_error(path: str, mod: Modality, missing, have, wanted) -> InferenceError:
    return InferenceError(
        f"{path} lacks the model's {mod.name} band(s) {', '.join(missing)} (it holds "
        f"{', '.join(have) or 'none recognised'}). The model needs {', '.join(wanted)}: pass "
        "--bands naming each file band in order, pick the right --modality, or use a model "
        "trained on these bands"
    )


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
    num_periods: int | None = None
    """Time steps the model reads (first ones kept, short series padded as invalid)."""
    substitution: dict[str, str] | None = None
    """The product substitution the user accepted for this input (recorded in the outputs)."""

    @classmethod
    def open(
        cls,
        path: str,
        modality: str,
        model_bands: list[str],
        *,
        bands: list[str] | None = None,
        when: str | None = None,
        dates: list[str] | None = None,
        num_periods: int | None = None,
        allow_substitution: bool = False,
    ) -> RasterSource:
        """Check the file (CRS, product level, bands) and map model bands to file bands."""
        import warnings

        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        from earthplat.data.sources.bands import PREDICT_FLAGS, file_date, map_file_bands
        from earthplat.data.sources.level import check_product

        mod = get_modality(modality)
        wanted = list(mod.canonical(model_bands))
        from rasterio.errors import RasterioIOError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                src = rasterio.open(path)
        except RasterioIOError as e:
            raise InferenceError(
                f"--input {path} is not a readable raster or dataset directory ({e})"
            ) from None
        with src:
            if src.crs is None:
                raise InferenceError(
                    f"{path} has no CRS (no georeferencing), so outputs cannot be placed on the "
                    "map; georeference it first: earthplat raster georef IN OUT --crs EPSG:N "
                    "--bounds minx miny maxx maxy"
                )
            tags, descs, count = src.tags(), list(src.descriptions), src.count
        try:
            substitution = check_product(
                path,
                mod,
                tags=tags,
                descriptions=descs,
                allow=allow_substitution,
                action="predict",
            )
        except DataError as e:
            raise InferenceError(str(e)) from None
        try:
            mapping = map_file_bands(
                path,
                count=count,
                descriptions=descs,
                modality=mod,
                names=bands,
                dates=dates,
                flags=PREDICT_FLAGS,
            )
        except DataError as e:
            raise InferenceError(str(e)) from None
        default = file_date(path, tags, when)
        steps: dict[date | None, dict[str, int]] = {}
        for i, (band, on) in enumerate(mapping, start=1):
            day = (on.date() if on else None) or (default.date() if default else None)
            steps.setdefault(day, {})[band] = i
        if None in steps and mod.multitemporal:
            raise InferenceError(
                f"{path}: no acquisition date in its band descriptions, tags or name, and the "
                "model encodes the date; pass --date YYYY-MM-DD (or --dates for a multi-date file)"
            )
        channels, days = [], sorted(steps, key=lambda d: d or date.min)
        for day in days:
            where = steps[day]
            missing = [b for b in wanted if b not in where]
            if missing:
                raise _missing_bands_error(path, mod, missing, sorted(where), wanted)
            channels.append([where[b] for b in wanted])
        days = [d or date(1970, 1, 1) for d in days]  # static maps: time does not apply
        return cls(str(path), mod, wanted, channels, days, num_periods, substitution)

    # --- what the engine and the outputs ask ----------------------------------------------
    def timestamps(self) -> np.ndarray:
        """[T, 3] day, month 0-11, year (the encoder's convention), fitted to the model's
        period count."""
        stamps = np.array([[d.day, d.month - 1, d.year] for d in self.dates], dtype=np.int64)
        if self.num_periods is None:
            return stamps
        n = self.num_periods
        return (
            stamps[:n]
            if len(stamps) >= n
            else np.concatenate([stamps, np.repeat(stamps[-1:], n - len(stamps), axis=0)])
        )

    def describe(self) -> list:
        """What identifies this input in a resumable run's manifest."""
        return [self.path, self.bands, self.channels, self.num_periods]

    def handle(self) -> Any:
        """An open reader for :meth:`read` (close it when done)."""
        import rasterio

        return rasterio.open(self.path)

    def grid(self) -> Grid:
        with self.handle() as ds:
            return Grid(ds.crs, ds.transform, ds.width, ds.height)

    def read(self, src: Any, row: int, col: int, height: int, width: int) -> tuple:
        """([T, C, h, w] normalised float32, [T, h, w] bool valid) of a window of ``src``
        (from :meth:`handle`); pixels outside the raster are invalid zeros."""
        from rasterio.windows import Window

        t, c = len(self.channels), len(self.bands)
        stored = np.zeros((t, c, height, width), np.float32)
        valid = np.zeros((t, height, width), bool)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, src.height), min(col + width, src.width)
        if r1 > r0 and c1 > c0:
            win = Window(c0, r0, c1 - c0, r1 - r0)
            flat = sorted({b for ch in self.channels for b in ch})
            raw = src.read(flat, window=win).astype(np.float32)  # [len(flat), h, w]
            masks = read_masks(src, flat, window=win)  # nodata, internal mask or alpha
            index = {b: i for i, b in enumerate(flat)}
            ys, xs = slice(r0 - row, r1 - row), slice(c0 - col, c1 - col)
            for ti, ch in enumerate(self.channels):
                sel = [index[b] for b in ch]
                values = raw[sel]  # [C, h, w]
                stored[ti, :, ys, xs] = np.nan_to_num(values)
                valid[ti, ys, xs] = (np.isfinite(values) & masks[sel]).all(0)
        return self._prepared(stored, valid)

    def _prepared(self, stored: np.ndarray, valid: np.ndarray) -> tuple:
        data = prepare_modality(stored, valid, self.modality, self.bands)
        if self.num_periods is not None:
            data, valid, _ = fit_periods(data, valid, np.zeros((len(data), 3)), self.num_periods)
        return data, valid

    def any_valid(self, row: int, col: int, height: int, width: int) -> bool:
        """Whether a decimated read of the area finds a valid pixel."""
        with self.handle() as src:
            r0, c0 = max(row, 0), max(col, 0)
            r1, c1 = min(row + height, src.height), min(col + width, src.width)
            if r1 <= r0 or c1 <= c0:
                return False
            from rasterio.windows import Window

            flat = sorted({b for ch in self.channels for b in ch})
            shape = (len(flat), min(r1 - r0, 256), min(c1 - c0, 256))
            win = Window(c0, r0, c1 - c0, r1 - r0)
            raw = src.read(flat, window=win, out_shape=shape)
            ok = read_masks(src, flat, window=win, out_shape=shape) & np.isfinite(raw)
            return bool(ok.all(0).any())


@dataclass
class LayerSource(RasterSource):
    """One modality read from a materialised dataset layer (``channels`` index its data COG)."""

    reader: Any = None
    """The layer's ``earthplat.data.layer.LayerReader``."""
    periods: list[int] = field(default_factory=list)

    @classmethod
    def open_layer(
        cls,
        dataset: Any,
        window: Any,
        layer: str,
        model_bands: list[str],
        *,
        modality: str | None = None,
        num_periods: int | None = None,
        substitution: dict[str, str] | None = None,
    ) -> LayerSource:
        """The layer ``layer`` of ``window`` as the model's ``modality`` input (default: the
        layer's own modality), with the model's bands."""
        from earthplat.data.layer import LayerReader

        reader = LayerReader(dataset, window, layer)
        mod = get_modality(modality or reader.modality)
        wanted = list(mod.canonical(model_bands))
        missing = [b for b in wanted if b not in reader.bands]
        if missing:
            raise _missing_bands_error(
                f"window {reader.window} layer {layer!r}", mod, missing, reader.bands, wanted
            )
        t, c = reader.shape[:2]
        periods = list(range(t if num_periods is None else min(t, num_periods)))
        channels = [[p * c + reader.bands.index(b) + 1 for b in wanted] for p in periods]
        dates = [reader.times[p].date() for p in periods]
        path = dataset.local_path(reader.data_path) if dataset.is_local else reader.data_path
        return cls(path, mod, wanted, channels, dates, num_periods, substitution, reader, periods)

    def describe(self) -> list:
        meta = self.reader.metadata
        return [self.path, self.bands, self.channels, self.num_periods, meta.get("created")]

    def handle(self) -> Any:
        return self.reader.open()

    def grid(self) -> Grid:
        from affine import Affine
        from rasterio.crs import CRS

        meta = self.reader.metadata
        crs, transform = CRS.from_user_input(meta["crs"]), Affine(*meta["transform"])
        return Grid(crs, transform, self.reader.width, self.reader.height)

    def read(self, src: Any, row: int, col: int, height: int, width: int) -> tuple:
        stored, valid = self.reader.read(
            row, col, height, width, handles=src, periods=self.periods, bands=self.bands
        )
        return self._prepared(stored, valid)

    def any_valid(self, row: int, col: int, height: int, width: int) -> bool:
        return bool(self.reader.read_valid(row, col, height, width, periods=self.periods).any())


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
