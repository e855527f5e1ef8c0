"""A small materialised dataset for the pack and pretraining tests (house habit: the fixture's
generator lives next to the tests that use it).

Real ingestion path: small UTM GeoTIFFs written with rasterio, ingested with ``LocalSource`` +
``materialize``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from earthplat.data.dataset import Dataset
from earthplat.data.materialize import LayerSpec, materialize
from earthplat.data.sources.local import LocalSource
from earthplat.data.window import Window

CRS = "EPSG:32633"
COL0, ROW0 = 50_000, -520_000
"""Top-left pixel of the rasters on the 10 m grid (x = 500 km, y = 5200 km)."""
SIDE = 96
DATES = ("2022-01-05", "2022-02-10", "2022-03-15")
LAYERS = {"s2": "sentinel2_l2a", "s1": "sentinel1", "wc": "worldcover"}
NO_S1 = "w5"
"""The window whose Sentinel-1 pixels are all nodata: it gets no s1 layer."""
SHORT = "w8"
"""The 24 x 32 window (the others are 32 x 32)."""


def _write_tif(path: Path, array: np.ndarray, bands: list[str], *, nodata=None, date=None):
    import rasterio
    from affine import Affine

    c, h, w = array.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=c,
        dtype=array.dtype,
        crs=CRS,
        transform=Affine(10, 0, COL0 * 10, 0, -10, -ROW0 * 10),
        nodata=nodata,
    ) as dst:
        dst.write(array)
        for i, band in enumerate(bands, start=1):
            dst.set_band_description(i, band)
        if date:
            dst.update_tags(DATETIME=date)


def build_dataset(root: Path) -> Dataset:
    """Nine windows (3 x 3 cells of 32 px, the last one 24 px tall) with S2 (3 periods, some
    nodata, the east third missing in March), S1 (none for ``NO_S1``) and WorldCover."""
    rng = np.random.default_rng(0)
    raw = root / "raw"
    raw.mkdir(parents=True)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    for k, date in enumerate(DATES):
        field = 1000 + 20 * yy + 10 * xx + 300 * k  # [H, W] smooth, like imagery
        s2 = (
            field[None] * np.array([1.0, 1.1, 1.2, 1.5])[:, None, None]
            + rng.normal(0, 30, (4, SIDE, SIDE))
        ).astype(np.uint16)  # [C, H, W]
        s2[:, 3:9, 5:12] = 0  # nodata block in w0
        if k == 2:
            s2 = s2[:, :, :64]  # March: east third not acquired
        _write_tif(raw / f"s2_{date}.tif", s2, ["B02", "B03", "B04", "B08"], nodata=0, date=date)
        s1 = (-12 + rng.normal(0, 2, (2, SIDE, SIDE))).astype(np.float32)
        s1[:, 32:64, 64:96] = np.nan  # the cell of w5
        _write_tif(raw / f"s1_{date}.tif", s1, ["VV", "VH"], date=date)
    wc = rng.choice(np.array([10, 20, 30], dtype=np.uint8), (1, SIDE, SIDE))
    _write_tif(raw / "wc.tif", wc, ["B1"], nodata=0)

    windows = []
    for i in range(9):
        r, c = divmod(i, 3)
        bottom = ROW0 + 32 * r + (24 if f"w{i}" == SHORT else 32)
        windows.append(
            Window(
                f"w{i}",
                CRS,
                10.0,
                (COL0 + 32 * c, ROW0 + 32 * r, COL0 + 32 * c + 32, bottom),
                "2022-01-01",
                "2022-04-01",
            )
        )
    ds = Dataset(root / "dataset")
    ds.write_windows(windows)
    sources = {
        "s2": LocalSource([str(raw / "s2_*.tif")], "sentinel2_l2a"),
        "s1": LocalSource([str(raw / "s1_*.tif")], "sentinel1"),
        "wc": LocalSource([str(raw / "wc.tif")], "worldcover"),
    }
    for w in windows:
        for layer, modality in LAYERS.items():
            if layer == "s1" and w.name == NO_S1:
                continue  # materialize would raise NoDataError: all pixels are nodata
            materialize(ds, w, LayerSpec(layer, modality), sources[layer])
    return ds
