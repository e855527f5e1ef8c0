"""Bad input gives a clear error or recorded missing data, and nothing half-written."""

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from earthplat.data.dataset import Dataset
from earthplat.data.ingest import IngestConfig, ingest
from earthplat.data.materialize import LayerSpec, materialize
from earthplat.data.sources import LocalSource
from earthplat.data.window import window_around, windows_from_aoi
from earthplat.errors import DataError, NoDataError, WindowError

QUIET = IngestConfig(progress=False, retries=0)


def _write_s1(path, lon0=12.0, lat0=45.0, value=-10.0, date="2020-05-01"):
    data = np.full((2, 50, 50), value, dtype=np.float32)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=50,
        height=50,
        count=2,
        dtype="float32",
        crs="EPSG:4326",
        transform=from_origin(lon0, lat0, 1e-4, 1e-4),
        nodata=float("nan"),
    ) as dst:
        dst.write(data)
        dst.descriptions = ("VV", "VH")
        dst.update_tags(DATE=date)
    return path


def _window(**kw):
    kw.setdefault("start", "2020-04-01")
    kw.setdefault("end", "2020-06-01")
    return window_around(12.0025, 44.9975, name="w", size=32, **kw)


def _nothing_written(ds, w, layer):
    d = ds.window_dir(w)
    assert not ds.fs.exists(f"{d}/{layer}.tif")
    assert not ds.fs.exists(f"{d}/{layer}.mask.tif")
    assert not ds.fs.exists(f"{d}/{layer}.json")


def test_corrupt_file_is_named(tmp_path):
    bad = tmp_path / "scene.tif"
    bad.write_bytes(b"II*\x00this is not a tiff at all" * 10)
    with pytest.raises(DataError, match=r"scene\.tif is not a readable raster"):
        LocalSource([str(bad)], "sentinel1", datetime="2020-05-01").items()


def test_raster_without_crs_is_refused(shared_data, tmp_path):
    # real NAIP tile whose source dropped its georeferencing
    naip = shared_data / "real" / "chesapeake_naip_geobench" / "id_000051_naip_rgbn.tif"
    with pytest.raises(DataError, match="has no CRS"):
        LocalSource(
            [str(naip)], "sentinel2_l2a", bands=["B04", "B03", "B02", "B08"], datetime="2020-01-01"
        ).items()


def test_aoi_that_meets_no_data_is_reported_missing_and_writes_nothing(tmp_path):
    src = LocalSource([str(_write_s1(tmp_path / "s1.tif"))], "sentinel1")
    ds = Dataset(tmp_path / "ds")
    far = windows_from_aoi(
        (30.0, 10.0, 30.001, 10.001), start="2020-04-01", end="2020-06-01", size=16
    )
    ds.write_windows(far)
    report = ingest(ds, far, LayerSpec("s1", "sentinel1"), src, QUIET)  # not a failure
    assert set(report.missing) == {w.name for w in far} and not report.done
    assert not report.failed
    assert "no sentinel1 item of the source covers it" in report.missing[far[0].name]
    assert "MISSING" in report.summary() and f"{len(far)} missing" in report.summary()
    for w in far:
        _nothing_written(ds, w, "s1")


def test_band_missing_from_item_is_named(tmp_path):
    src = LocalSource([str(_write_s1(tmp_path / "s1.tif"))], "sentinel1")
    ds = Dataset(tmp_path / "ds")
    w = _window()
    ds.write_windows([w])
    with pytest.raises(DataError, match="no asset for band"):
        materialize(
            ds,
            w,
            LayerSpec("s2", "sentinel2_l2a", bands=["B04"]),
            LocalSource([str(tmp_path / "s1.tif")], "sentinel2_l2a", bands=["B02", "B03"]),
        )
    _nothing_written(ds, w, "s2")
    with pytest.raises(Exception, match="has no band 'B04'"):
        materialize(ds, w, LayerSpec("s1", "sentinel1", bands=["B04"]), src)


def test_time_range_with_no_scenes(tmp_path):
    src = LocalSource([str(_write_s1(tmp_path / "s1.tif"))], "sentinel1")
    ds = Dataset(tmp_path / "ds")
    w = _window(start="2021-01-01", end="2021-03-01")
    ds.write_windows([w])
    with pytest.raises(NoDataError, match="between 2021-01-01 and 2021-03-01"):
        materialize(ds, w, LayerSpec("s1", "sentinel1"), src)
    _nothing_written(ds, w, "s1")


def test_missing_periods_are_masked_not_zero(tmp_path):
    src = LocalSource([str(_write_s1(tmp_path / "s1.tif", value=-7.5))], "sentinel1")
    ds = Dataset(tmp_path / "ds")
    w = _window(start="2020-03-02", end="2020-06-30")  # 4 periods of 30 d; data in the third
    ds.write_windows([w])
    meta = materialize(ds, w, LayerSpec("s1", "sentinel1", period="30d"), src)
    assert meta["shape"][0] == 4
    assert meta["missing_periods"] == [0, 1, 3]
    from earthplat.data.layer import read_layer_arrays

    ld = read_layer_arrays(ds, w, "s1")
    assert not ld.valid[[0, 1, 3]].any() and ld.valid[2].all()
    assert np.isnan(ld.data[[0, 1, 3]]).all()  # float nodata is NaN, never a plausible dB value
    assert np.allclose(ld.data[2], -7.5)


def test_partial_coverage_is_masked(tmp_path):
    src = LocalSource([str(_write_s1(tmp_path / "s1.tif"))], "sentinel1")
    ds = Dataset(tmp_path / "ds")
    w = window_around(12.0, 45.0, name="edge", size=32, start="2020-04-01", end="2020-06-01")
    ds.write_windows([w])
    materialize(ds, w, LayerSpec("s1", "sentinel1", period="61d"), src)
    from earthplat.data.layer import read_layer_arrays

    valid = read_layer_arrays(ds, w, "s1").valid[0]
    assert 0.1 < valid.mean() < 0.5  # the window's corner hangs over the file's corner


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"start": "2020-05-01", "end": "2020-04-01"}, "ends"),
        ({"start": "yesterday", "end": "2020-04-01"}, "ISO date"),
    ],
)
def test_bad_time_ranges(kwargs, match):
    with pytest.raises(WindowError, match=match):
        window_around(12.0, 45.0, name="w", **kwargs)


def test_invalid_aoi_geometry():
    from shapely.geometry import Polygon

    bowtie = Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    with pytest.raises(WindowError, match="not a valid geometry"):
        windows_from_aoi(bowtie, start="2020-01-01", end="2020-02-01")
    with pytest.raises(WindowError, match="outside longitude/latitude"):
        windows_from_aoi((500000, 4000000, 500100, 4000100), start="2020-01-01", end="2020-02-01")


def test_dataset_on_an_fsspec_store(tmp_path):
    """The dataset directory may be any fsspec URL (here the in-memory filesystem)."""
    from earthplat.data.layer import read_layer_arrays

    src = LocalSource([str(_write_s1(tmp_path / "s1.tif", value=-3.0))], "sentinel1")
    ds = Dataset("memory://earthplat-test/ds")
    w = _window()
    ds.write_windows([w])
    assert [x.name for x in Dataset("memory://earthplat-test/ds").windows()] == ["w"]
    materialize(ds, w, LayerSpec("s1", "sentinel1", period="61d"), src)
    assert ds.layers(w) == ["s1"]
    ld = read_layer_arrays(ds, w, "s1")
    assert ld.valid.all() and np.allclose(ld.data, -3.0)
    assert not (tmp_path / "memory:").exists()
