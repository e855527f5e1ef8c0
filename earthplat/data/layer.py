"""Reading materialised layers: numpy arrays, xarray DataArrays with their CRS."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from earthplat.data.dataset import Dataset
from earthplat.data.window import Window, parse_time


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


def _read_raster(dataset: Dataset, path: str) -> np.ndarray:
    import rasterio

    if dataset.is_local:
        with rasterio.open(dataset.fs._strip_protocol(path)) as src:
            return src.read()
    with dataset.fs.open(path, "rb") as f, rasterio.open(f) as src:  # any fsspec store
        return src.read()


def read_layer_arrays(dataset: Dataset, window: Window | str, layer: str) -> LayerData:
    meta = dataset.layer_metadata(window, layer)
    t, c, h, w = meta["shape"]
    data = _read_raster(dataset, dataset.layer_path(window, layer, ".tif")).reshape(t, c, h, w)
    valid = _read_raster(dataset, dataset.layer_path(window, layer, ".mask.tif")).astype(bool)
    times = [parse_time(p0) for p0, _ in meta["periods"]]
    return LayerData(data, valid, list(meta["bands"]), times, meta)


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
