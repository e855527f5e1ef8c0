"""Materialisation mechanics: mosaics, COG output, retries."""

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from earthplat.data import ingest as ingest_module
from earthplat.data.dataset import Dataset
from earthplat.data.ingest import IngestConfig, IngestError, ingest
from earthplat.data.layer import read_layer_arrays
from earthplat.data.materialize import LayerSpec, materialize
from earthplat.data.sources import LocalSource
from earthplat.data.window import window_around


def _tile(path, x0, value, date="2021-06-10", width=40):
    """A UTM 32N single-date S2 L2A tile of 12 bands holding ``value``."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=64,
        count=12,
        dtype="uint16",
        crs="EPSG:32632",
        nodata=0,
        transform=from_origin(x0, 5_000_640, 10, 10),
    ) as dst:
        dst.write(np.full((12, 64, width), value, dtype=np.uint16))
        dst.update_tags(DATE=date)
    return str(path)


@pytest.fixture
def two_tiles(tmp_path):
    # two adjacent acquisitions on the same day, each covering half of the window
    left = _tile(tmp_path / "left.tif", 500_000, 1000)
    right = _tile(tmp_path / "right.tif", 500_320, 3000)
    from rasterio.warp import transform

    lon, lat = transform("EPSG:32632", "EPSG:4326", [500_320], [5_000_320])
    w = window_around(lon[0], lat[0], name="m", size=48, start="2021-06-01", end="2021-07-01")
    return [left, right], w


def test_adjacent_items_mosaic_into_one_period(tmp_path, two_tiles):
    files, w = two_tiles
    ds = Dataset(tmp_path / "ds")
    ds.write_windows([w])
    meta = materialize(
        ds, w, LayerSpec("s2", "sentinel2_l2a", period="30d"), LocalSource(files, "sentinel2_l2a")
    )
    ld = read_layer_arrays(ds, w, "s2")
    assert ld.valid.all(), "the two halves together cover the window"
    values = set(np.unique(ld.data[0, 0]).tolist())
    assert {1000, 3000} <= values  # both tiles contribute (bilinear blends the seam)
    assert len(meta["items"][0]) == 2


def test_output_is_a_valid_cog_with_band_descriptions(tmp_path, two_tiles):
    from rio_cogeo.cogeo import cog_validate

    files, w = two_tiles
    ds = Dataset(tmp_path / "ds")
    ds.write_windows([w])
    materialize(
        ds,
        w,
        LayerSpec("s2", "sentinel2_l2a", period="15d", bands=["B04", "B08"]),
        LocalSource(files, "sentinel2_l2a"),
    )
    for suffix in (".tif", ".mask.tif"):
        path = ds.layer_path(w, "s2", suffix)
        is_valid, errors, _ = cog_validate(path)
        assert is_valid, errors
    with rasterio.open(ds.layer_path(w, "s2", ".tif")) as src:
        assert src.crs.to_string() == w.crs and src.transform == w.transform
        assert src.descriptions == (
            "2021-06-01_B04",
            "2021-06-01_B08",
            "2021-06-16_B04",
            "2021-06-16_B08",
        )
        assert src.tags()["BANDS"] == "B04,B08"
    # a materialised layer is itself a valid local source (descriptions carry date and band)
    again = LocalSource([ds.layer_path(w, "s2", ".tif")], "sentinel2_l2a").items()
    assert [it.datetime.day for it in again] == [1, 16] and set(again[0].assets) == {"B04", "B08"}


def test_transient_failures_are_retried_then_reported(tmp_path, two_tiles, monkeypatch):
    files, w = two_tiles
    ds = Dataset(tmp_path / "ds")
    ds.write_windows([w])
    calls = {"n": 0}
    real = ingest_module.materialize

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OSError("connection reset by peer")
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "materialize", flaky)
    cfg = IngestConfig(progress=False, retries=2, backoff_s=0.01)
    report = ingest(
        ds, [w], LayerSpec("s2", "sentinel2_l2a"), LocalSource(files, "sentinel2_l2a"), cfg
    )
    assert report.done == ["m"] and calls["n"] == 3

    calls["n"] = -100  # fails every time now
    with pytest.raises(IngestError, match="connection reset"):
        ingest(ds, [w], LayerSpec("s2b", "sentinel2_l2a"), LocalSource(files, "sentinel2_l2a"), cfg)
    assert calls["n"] == -100 + 3  # 1 attempt + 2 retries, then it gives up


def test_s1_linear_backscatter_is_converted_to_db(tmp_path):
    path = tmp_path / "s1_linear.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=32,
        height=32,
        count=2,
        dtype="float32",
        crs="EPSG:32632",
        nodata=float("nan"),
        transform=from_origin(500_000, 5_000_320, 10, 10),
    ) as dst:
        dst.write(np.stack([np.full((32, 32), 0.1), np.full((32, 32), 0.01)]).astype("float32"))
        dst.descriptions = ("VV", "VH")
        dst.update_tags(DATE="2021-06-02")
    from rasterio.warp import transform

    lon, lat = transform("EPSG:32632", "EPSG:4326", [500_160], [5_000_160])
    w = window_around(lon[0], lat[0], name="s1", size=16, start="2021-06-01", end="2021-06-15")
    ds = Dataset(tmp_path / "ds")
    ds.write_windows([w])
    materialize(
        ds,
        w,
        LayerSpec("s1", "sentinel1", period="14d"),
        LocalSource([str(path)], "sentinel1", to_db=True),
    )
    ld = read_layer_arrays(ds, w, "s1")
    assert np.allclose(ld.data[0, 0], -10.0, atol=1e-4) and np.allclose(
        ld.data[0, 1], -20.0, atol=1e-4
    )
