"""The one reader of a materialised layer: what training, evaluation, prediction and the platform
all read a window's layer through.

A layer is ``LAYER.json`` (modality, bands, periods, ...), ``LAYER.tif`` (stored values, bands =
periods x bands, date-major) and ``LAYER.mask.tif`` (validity per period and pixel). Validity
comes from the mask COG, never from guessing at values, and the times from the JSON's periods,
never from band descriptions. ``LayerReader.read`` reads any pixel window of the layer (also
partly or wholly outside it: those pixels come back invalid), so whole-window training reads
and chunked prediction reads are the same code.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from earthplat.data.dataset import Dataset
from earthplat.data.window import Window, parse_time
from earthplat.errors import DataError


@dataclass
class LayerData:
    data: np.ndarray
    """[T, C, H, W] stored values (nodata where invalid)."""
    valid: np.ndarray
    """[T, H, W] bool."""
    bands: list[str]
    times: list[datetime]
    """Start of each period."""
    metadata: dict[str, Any]


class LayerHandles:
    """The open data and mask COGs of one layer (close them, or use as a context manager)."""

    def __init__(self, reader: LayerReader) -> None:
        import rasterio

        self._stack = ExitStack()
        ds = reader.dataset
        try:
            opened = []
            for path in (reader.data_path, reader.mask_path):
                if ds.is_local:
                    opened.append(self._stack.enter_context(rasterio.open(ds.local_path(path))))
                else:  # any fsspec store
                    f = self._stack.enter_context(ds.fs.open(path, "rb"))
                    opened.append(self._stack.enter_context(rasterio.open(f)))
        except BaseException:
            self._stack.close()
            raise
        self.data, self.mask = opened

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> LayerHandles:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LayerReader:
    """One finished layer of a window."""

    def __init__(self, dataset: Dataset, window: Window | str, layer: str) -> None:
        self.dataset, self.layer = dataset, layer
        self.window = window.name if isinstance(window, Window) else window
        self.metadata: dict[str, Any] = dataset.layer_metadata(window, layer)
        t, c, h, w = self.metadata["shape"]
        self.shape = (t, c, h, w)
        self.bands: list[str] = list(self.metadata["bands"])
        self.times: list[datetime] = [parse_time(p0) for p0, _ in self.metadata["periods"]]
        self.modality: str = self.metadata["modality"]
        self.data_path = dataset.layer_path(window, layer, ".tif")
        self.mask_path = dataset.layer_path(window, layer, ".mask.tif")

    @property
    def height(self) -> int:
        return self.shape[2]

    @property
    def width(self) -> int:
        return self.shape[3]

    def open(self) -> LayerHandles:
        return LayerHandles(self)

    def _window(self, row, col, height, width) -> dict[str, Any]:
        """rasterio read arguments for a pixel window (boundless where it leaves the layer)."""
        from rasterio.windows import Window as RioWindow

        if (row, col, height, width) == (0, 0, self.height, self.width):
            return {}
        return {"window": RioWindow(col, row, width, height), "boundless": True, "fill_value": 0}

    def read(
        self,
        row: int = 0,
        col: int = 0,
        height: int | None = None,
        width: int | None = None,
        *,
        handles: LayerHandles | None = None,
        periods: list[int] | None = None,
        bands: list[str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """([T', C', h, w] stored values, [T', h, w] bool validity) of a pixel window of the
        layer (default: all of it); ``periods``/``bands`` pick periods (indices) and bands (in
        that order). Pixels outside the layer are invalid and hold 0."""
        t, c = self.shape[:2]
        height = self.height if height is None else height
        width = self.width if width is None else width
        periods = list(range(t)) if periods is None else list(periods)
        chosen = self.bands if bands is None else list(bands)
        missing = [b for b in chosen if b not in self.bands]
        if missing:
            raise DataError(
                f"window {self.window} layer {self.layer!r} has no band(s) {missing} (it has "
                f"{self.bands})"
            )
        index = [self.bands.index(b) for b in chosen]
        kwargs = self._window(row, col, height, width)
        own = handles is None
        handles = handles or self.open()
        try:
            data = handles.data.read([p * c + i + 1 for p in periods for i in index], **kwargs)
            valid = handles.mask.read([p + 1 for p in periods], **kwargs)  # [T', h, w]
        finally:
            if own:
                handles.close()
        return data.reshape(len(periods), len(chosen), height, width), valid.astype(bool)

    def read_valid(
        self,
        row: int = 0,
        col: int = 0,
        height: int | None = None,
        width: int | None = None,
        *,
        periods: list[int] | None = None,
    ) -> np.ndarray:
        """[T', h, w] validity of a pixel window (the mask COG only)."""
        periods = list(range(self.shape[0])) if periods is None else list(periods)
        height = self.height if height is None else height
        width = self.width if width is None else width
        with self.open() as handles:
            kwargs = self._window(row, col, height, width)
            return handles.mask.read([p + 1 for p in periods], **kwargs).astype(bool)

    def read_all(self) -> LayerData:
        data, valid = self.read()
        return LayerData(data, valid, list(self.bands), list(self.times), self.metadata)


def read_layer_arrays(dataset: Dataset, window: Window | str, layer: str) -> LayerData:
    """The whole layer: stored values, validity, bands, period starts and metadata."""
    return LayerReader(dataset, window, layer).read_all()


def read_layer(dataset: Dataset | str, window: Window | str, layer: str, *, masked: bool = True):
    """The layer as an ``xarray.DataArray`` with dims (time, band, y, x) and its CRS.

    With ``masked`` values are float32 with NaN where invalid (the xarray convention); the
    boolean validity is also attached as the ``valid`` coordinate (time, y, x).
    """
    import rioxarray  # noqa: F401 - registers the .rio accessor
    import xarray as xr
    from affine import Affine

    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    layer_data = read_layer_arrays(ds, window, layer)
    meta = layer_data.metadata
    transform = Affine(*meta["transform"])
    h, w = meta["shape"][2:]
    xs = transform.c + transform.a * (np.arange(w) + 0.5)
    ys = transform.f + transform.e * (np.arange(h) + 0.5)
    values = layer_data.data
    if masked:
        values = np.where(layer_data.valid[:, None], values.astype(np.float32), np.nan)
    times = np.array([np.datetime64(tm.replace(tzinfo=None)) for tm in layer_data.times])
    da = xr.DataArray(
        values,
        dims=("time", "band", "y", "x"),
        coords={
            "time": times,
            "band": layer_data.bands,
            "y": ys,
            "x": xs,
            "valid": (("time", "y", "x"), layer_data.valid),
        },
        name=layer,
        attrs={
            "modality": meta["modality"],
            "window": meta["window"],
            "nodata": meta["nodata"],
            "missing_periods": meta["missing_periods"],
        },
    )
    return da.rio.write_crs(meta["crs"]).rio.write_transform(transform)
