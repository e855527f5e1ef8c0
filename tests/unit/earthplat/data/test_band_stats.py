"""Per-band statistics of rasters and the sensor YAML made from them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from earthplat.data.band_stats import BandStats, band_stats, sensor_yaml
from earthplat.errors import DataError
from earthplat.sensors.file import load_sensor_file

NAIP = "real/chesapeake_naip_geobench"


def _tif(path, array, *, nodata=None, descriptions=None, mask=None, **profile):
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
        crs="EPSG:32633",
        transform=Affine(10, 0, 500000, 0, -10, 5200000),
        nodata=nodata,
        **profile,
    ) as dst:
        dst.write(array)
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
        if mask is not None:
            dst.write_mask(mask)
    return str(path)


def _expected(values) -> tuple:
    v = np.asarray(values, dtype=np.float64)
    p02, p98 = np.percentile(v, [2, 98])
    return (v.mean(), v.std(), v.min(), v.max(), p02, p98, v.size)


def _got(s: BandStats) -> tuple:
    return (s.mean, s.std, s.min, s.max, s.p02, s.p98, s.count)


def test_statistics_over_every_valid_pixel_of_all_files(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3000, (2, 20, 30), dtype=np.uint16)
    b = rng.integers(500, 9000, (2, 10, 10), dtype=np.uint16)
    paths = [_tif(tmp_path / "a.tif", a), _tif(tmp_path / "b.tif", b)]
    stats = band_stats(paths)
    assert [s.name for s in stats] == ["B1", "B2"]
    for c in range(2):
        both = np.concatenate([a[c].ravel(), b[c].ravel()])
        assert _got(stats[c]) == pytest.approx(_expected(both))


def test_nodata_nan_and_masks_are_excluded(tmp_path):
    data = np.arange(1, 101, dtype=np.int16).reshape(1, 10, 10)
    data[0, 0, :5] = -9999
    (s,) = band_stats([_tif(tmp_path / "nd.tif", data, nodata=-9999)])
    assert _got(s) == pytest.approx(_expected(data[data != -9999]))

    f = np.linspace(0, 1, 100, dtype=np.float32).reshape(1, 10, 10)
    f[0, 3] = np.nan
    (s,) = band_stats([_tif(tmp_path / "nan.tif", f)])
    assert s.count == 90 and s.max == pytest.approx(1.0)

    mask = np.full((10, 10), 255, dtype=np.uint8)
    mask[5:] = 0  # an internal mask band: the bottom half is outside the image
    rows = np.arange(100, dtype=np.uint16).reshape(1, 10, 10)
    (s,) = band_stats([_tif(tmp_path / "mask.tif", rows, mask=mask)])
    assert s.count == 50 and s.max == 49  # rows 0..4 only


def test_a_real_alpha_band_masks_and_a_mislabelled_one_is_data(tmp_path):
    rgb = np.full((3, 8, 8), 100, dtype=np.uint8)
    alpha = np.full((1, 8, 8), 255, dtype=np.uint8)
    alpha[0, :2] = 0
    rgb[:, :2] = 7  # outside the footprint
    # GDAL flags the 4th band of an 8-bit 4-band GeoTIFF as alpha
    path = _tif(tmp_path / "rgba.tif", np.concatenate([rgb, alpha]))
    stats = band_stats([path])
    assert len(stats) == 3 and all(s.count == 48 and s.min == 100 for s in stats)
    # naming all four bands says that the 4th one is data
    stats = band_stats([path], bands=["R", "G", "B", "X"])
    assert [s.name for s in stats] == ["R", "G", "B", "X"] and stats[0].min == 7
    # a band flagged alpha but described as data (the NAIP tiles' NIR) is data
    path = _tif(tmp_path / "rgbn.tif", np.concatenate([rgb, alpha]), descriptions=list("RGBN"))
    stats = band_stats([path])
    assert [s.name for s in stats] == list("RGBN") and stats[3].min == 0


def test_real_naip_tiles_keep_their_water_pixels(shared_data):
    tile = shared_data / NAIP / "id_000181_naip_rgbn.tif"  # 99.7 % water, NIR mostly 0
    stats = band_stats([str(tile)])
    assert [s.name for s in stats] == ["Red", "Green", "Blue", "NIR"]
    assert all(s.count == 256 * 256 for s in stats)
    assert stats[3].min == 0 and stats[3].p02 == 0


def test_big_files_are_sampled_reproducibly(tmp_path):
    rng = np.random.default_rng(2)
    big = rng.normal(1000, 100, (1, 400, 500)).astype(np.float32)
    small = rng.normal(1000, 100, (1, 50, 50)).astype(np.float32)
    paths = [_tif(tmp_path / "big.tif", big), _tif(tmp_path / "small.tif", small)]
    first = band_stats(paths, sample_pixels=5_000, seed=3)
    assert first == band_stats(paths, sample_pixels=5_000, seed=3)
    (s,) = first
    assert 4_000 <= s.count <= 5_000
    assert s.mean == pytest.approx(1000, abs=10) and s.std == pytest.approx(100, rel=0.1)


def test_band_names(tmp_path):
    data = np.ones((2, 4, 4), dtype=np.uint8)
    named = _tif(tmp_path / "named.tif", data, descriptions=["red", "nir"])
    assert [s.name for s in band_stats([named])] == ["red", "nir"]
    assert [s.name for s in band_stats([named], bands=["R", "N"])] == ["R", "N"]
    other = _tif(tmp_path / "other.tif", data, descriptions=["nir", "red"])
    with pytest.raises(DataError, match=r"name their bands differently.*give the band names"):
        band_stats([named, other])
    with pytest.raises(DataError, match=r"3 band names given .* but the files have 2 bands"):
        band_stats([named], bands=["a", "b", "c"])
    with pytest.raises(DataError, match="band names repeat"):
        band_stats([named], bands=["a", "A"])


def test_unusable_input_says_what_is_wrong(tmp_path):
    two = _tif(tmp_path / "two.tif", np.ones((2, 4, 4), dtype=np.uint8))
    three = _tif(tmp_path / "three.tif", np.ones((3, 4, 4), dtype=np.uint8))
    with pytest.raises(DataError, match=r"different band counts \(two.tif: 2, three.tif: 3\)"):
        band_stats([two, three])
    with pytest.raises(DataError, match="no rasters given"):
        band_stats([])
    with pytest.raises(DataError, match="does not exist"):
        band_stats([str(tmp_path / "missing.tif")])
    (tmp_path / "notes.tif").write_text("not a raster")
    with pytest.raises(DataError, match="not a raster rasterio can read"):
        band_stats([str(tmp_path / "notes.tif")])
    empty = _tif(tmp_path / "empty.tif", np.zeros((1, 4, 4), dtype=np.uint8), nodata=0)
    with pytest.raises(DataError, match="band B1 has no valid pixel"):
        band_stats([empty])


def test_sensor_yaml_round_trips_through_the_sensor_file(tmp_path):
    stats = [
        BandStats("R", 90.5, 40.25, 0, 255, 3, 250, 100),
        BandStats("NIR", 120.0, 50.0, 0, 240, 0, 230, 100),
    ]
    text = sensor_yaml(
        "my_cam", stats, gsd_m=0.5, dtype="uint16", nodata=65535, description="drone"
    )
    assert "R: min 0, p02 3, p98 250, max 255" in text  # observed ranges, as comments
    doc = yaml.safe_load(text)
    assert doc["nodata"] == 65535 and doc["multitemporal"] is True
    (tmp_path / "cam.yaml").write_text(text)
    (m,) = load_sensor_file(tmp_path / "cam.yaml")
    assert m.name == "my_cam" and m.band_names == ("R", "NIR") and m.description == "drone"
    assert [(b.mean, b.std, b.gsd_m) for b in m.bands] == [(90.5, 40.25, 0.5), (120, 50, 0.5)]
    floats = sensor_yaml("f", stats, gsd_m=1, dtype="float32", nodata=None)
    assert yaml.safe_load(floats)["nodata"] is None


def test_sensor_yaml_refuses_what_would_store_wrong_data():
    stats = [BandStats("NIR", 100.0, 50.0, 0, 255, 0, 250, 10)]
    with pytest.raises(DataError, match=r"nodata 0 lies inside the observed values of band.* NIR"):
        sensor_yaml("cam", stats, gsd_m=1, dtype="uint16", nodata=0)
    with pytest.raises(DataError, match=r"needs a nodata value .* choose a wider dtype"):
        sensor_yaml("cam", stats, gsd_m=1, dtype="uint8", nodata=None)
    with pytest.raises(DataError, match=r"needs a nodata value that valid pixels never take \(e"):
        sensor_yaml("cam", stats, gsd_m=1, dtype="uint16", nodata=None)
    with pytest.raises(DataError, match=r"which int8 .* cannot store"):
        sensor_yaml("cam", stats, gsd_m=1, dtype="int8", nodata=-1)
    with pytest.raises(DataError, match="dtype 'uint12' is not one of"):
        sensor_yaml("cam", stats, gsd_m=1, dtype="uint12", nodata=None)
    with pytest.raises(DataError, match="no band statistics"):
        sensor_yaml("cam", [], gsd_m=1, dtype="float32", nodata=None)
