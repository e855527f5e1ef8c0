"""Georeferencing rasters that have no CRS (earthplat.data.georef)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags

from earthplat.data.georef import georeference
from earthplat.errors import DataError

NAIP = "real/chesapeake_naip_geobench"
BOUNDS = (365_000.0, 4_310_000.0, 365_256.0, 4_310_256.0)  # 256 m in UTM 18N (Chesapeake Bay)


def _open(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return rasterio.open(path)


@pytest.fixture
def tile(shared_data):
    return str(shared_data / NAIP / "id_000051_naip_rgbn.tif")


def test_real_naip_tile_gets_a_crs_and_keeps_everything_else(tile, tmp_path):
    out = georeference(tile, str(tmp_path / "geo.tif"), crs="EPSG:26918", bounds=BOUNDS)
    with _open(tile) as src, rasterio.open(out) as dst:
        assert src.crs is None
        assert dst.crs.to_epsg() == 26918
        assert dst.transform == Affine(1, 0, 365_000, 0, -1, 4_310_256)
        assert dst.bounds == BOUNDS
        assert np.array_equal(dst.read(), src.read()) and dst.dtypes == src.dtypes
        assert dst.descriptions == ("Red", "Green", "Blue", "NIR")
        assert {k: v for k, v in dst.tags().items() if k != "AREA_OR_POINT"} == src.tags()
        assert dst.block_shapes == [(256, 256)] * 4 and dst.compression.value == "DEFLATE"
        # the source's NIR is flagged alpha (GDAL's 4-band default); the copy says it is a band
        assert src.colorinterp[3] == ColorInterp.alpha
        assert dst.colorinterp == (
            ColorInterp.red,
            ColorInterp.green,
            ColorInterp.blue,
            ColorInterp.undefined,
        )
        assert (dst.dataset_mask() == 255).all()  # NIR 0 is no longer read as "outside"


def test_transform_gives_the_same_grid_as_bounds(tile, tmp_path):
    a = georeference(tile, str(tmp_path / "a.tif"), crs="EPSG:26918", bounds=BOUNDS)
    b = georeference(
        tile,
        str(tmp_path / "b.tif"),
        crs="epsg:26918",
        transform=[1, 0, 365_000, 0, -1, 4_310_256],
        nodata=255,
    )
    with rasterio.open(a) as ra, rasterio.open(b) as rb:
        assert ra.transform == rb.transform and ra.crs == rb.crs
        assert ra.nodata is None and rb.nodata == 255
        assert np.array_equal(ra.read(), rb.read())


def test_masks_alpha_band_tags_and_big_rasters_survive(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, (2, 5, 3000), dtype=np.uint16)  # wider than one copy window
    mask = np.full((5, 3000), 255, dtype=np.uint8)
    mask[:, :100] = 0
    src = tmp_path / "plain.tif"
    with rasterio.open(
        src, "w", driver="GTiff", width=3000, height=5, count=2, dtype="uint16"
    ) as dst:
        dst.write(data)
        dst.write_mask(mask)
        dst.set_band_description(2, "nir")
        dst.update_tags(2, WAVELENGTH="0.86")
        dst.scales, dst.offsets = (0.0001, 0.0001), (0.0, -0.1)
        dst.update_tags(DATETIME="2021-06-01")
    out = georeference(
        str(src), str(tmp_path / "geo.tif"), crs="EPSG:32633", bounds=(0, 0, 3e4, 50)
    )
    with rasterio.open(out) as geo:
        assert np.array_equal(geo.read(), data) and geo.res == (10.0, 10.0)
        assert np.array_equal(geo.read_masks(1), mask)
        assert geo.descriptions == (None, "nir") and geo.tags(2)["WAVELENGTH"] == "0.86"
        assert geo.scales == (0.0001, 0.0001) and geo.offsets == (0.0, -0.1)
        assert geo.tags()["DATETIME"] == "2021-06-01"

    rgba = np.full((4, 8, 8), 200, dtype=np.uint8)
    rgba[3], rgba[3, :4] = 255, 0  # a real alpha band (no description): top half transparent
    src = tmp_path / "rgba.tif"
    with rasterio.open(src, "w", driver="GTiff", width=8, height=8, count=4, dtype="uint8") as dst:
        dst.write(rgba)
    out = georeference(
        str(src), str(tmp_path / "rgba_geo.tif"), crs="EPSG:4326", bounds=(10, 45, 11, 46)
    )
    with rasterio.open(out) as geo:
        assert geo.colorinterp[3] == ColorInterp.alpha
        assert MaskFlags.alpha in geo.mask_flag_enums[0]
        assert (geo.dataset_mask()[:4] == 0).all() and (geo.dataset_mask()[4:] == 255).all()


def test_existing_outputs_are_replaced_only_on_request(tile, tmp_path):
    out = tmp_path / "geo.tif"
    out.write_bytes(b"old")
    with pytest.raises(DataError, match=r"geo\.tif exists; choose another output or overwrite"):
        georeference(tile, str(out), crs="EPSG:26918", bounds=BOUNDS)
    assert out.read_bytes() == b"old"
    georeference(tile, str(out), crs="EPSG:26918", bounds=BOUNDS, overwrite=True)
    with rasterio.open(out) as geo:
        assert geo.crs.to_epsg() == 26918
    assert sorted(p.name for p in tmp_path.iterdir()) == ["geo.tif"]  # no temporary left
    with pytest.raises(DataError, match=r"the output .* is the input"):
        georeference(str(out), str(out), crs="EPSG:26918", bounds=BOUNDS, overwrite=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(crs="EPSG:999999", bounds=BOUNDS), "is not a CRS rasterio knows.*EPSG:32618"),
        (dict(crs="UTM 18", bounds=BOUNDS), "is not a CRS"),
        (dict(crs="EPSG:26918"), "give exactly one of bounds"),
        (dict(crs="EPSG:26918", bounds=BOUNDS, transform=[1, 0, 0, 0, -1, 0]), "exactly one"),
        (dict(crs="EPSG:26918", bounds=(10, 0, 5, 10)), "minx < maxx and miny < maxy"),
        (dict(crs="EPSG:26918", bounds=(0, 10, 10, 10)), "minx < maxx and miny < maxy"),
        (dict(crs="EPSG:26918", bounds=(0, 0, 10)), r"bounds must be 4 finite numbers"),
        (dict(crs="EPSG:26918", bounds=("a", 0, 1, 1)), "bounds must be 4 numbers"),
        (dict(crs="EPSG:4326", bounds=BOUNDS), "are not degrees, but EPSG:4326 is geographic"),
        (dict(crs="EPSG:26918", transform=[0, 0, 0, 0, 0, 0]), "is degenerate"),
        (dict(crs="EPSG:26918", transform=[1, 0, 0]), "transform must be 6 finite numbers"),
        (dict(crs="EPSG:26918", bounds=BOUNDS, nodata=-1), r"nodata -1 does not fit .* uint8"),
        (dict(crs="EPSG:26918", bounds=BOUNDS, nodata=0.5), "nodata 0.5 does not fit"),
    ],
)
def test_bad_arguments_say_what_to_give(tile, tmp_path, kwargs, message):
    with pytest.raises(DataError, match=message):
        georeference(tile, str(tmp_path / "geo.tif"), **kwargs)
    assert not (tmp_path / "geo.tif").exists()


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError, match=r"missing\.tif does not exist"):
        georeference(
            str(tmp_path / "missing.tif"),
            str(tmp_path / "o.tif"),
            crs="EPSG:4326",
            bounds=(0, 0, 1, 1),
        )
    (tmp_path / "notes.tif").write_text("not a raster")
    with pytest.raises(DataError, match="not a raster rasterio can read"):
        georeference(
            str(tmp_path / "notes.tif"),
            str(tmp_path / "o.tif"),
            crs="EPSG:4326",
            bounds=(0, 0, 1, 1),
        )
