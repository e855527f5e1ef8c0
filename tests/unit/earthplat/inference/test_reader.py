"""Band resolution, time steps, windowed reads and the input checks of ``RasterSource``."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from earthplat.inference.errors import InferenceError
from earthplat.inference.reader import Grid, RasterSource, window_from_bbox
from earthplat.sensors import S2_L1C_ORDER, normalize
from tests.unit.earthplat.inference.models import LANDSAT, NAIP, S2_CHIP, S2_DATE, SLOVENIA, real


def test_sen1floods11_bands_from_descriptions(shared_data) -> None:
    path = real(shared_data, S2_CHIP)
    src = RasterSource.open(str(path), "sentinel2_l1c", ["B08", "B03"], when=S2_DATE)
    assert src.bands == ["B08", "B03"] and src.channels == [[8, 3]]
    with rasterio.open(path) as ds:
        data, valid = src.read(ds, 10, 20, 4, 5)
        raw = ds.read([8, 3], window=((10, 14), (20, 25))).astype(np.float32)
    assert data.shape == (1, 2, 4, 5) and valid.all()
    np.testing.assert_allclose(data[0], normalize(raw, "sentinel2_l1c", ("B08", "B03")), rtol=1e-6)


def test_reads_outside_the_raster_are_invalid(shared_data) -> None:
    path = real(shared_data, S2_CHIP)
    src = RasterSource.open(str(path), "sentinel2_l1c", list(S2_L1C_ORDER), when=S2_DATE)
    with rasterio.open(path) as ds:
        data, valid = src.read(ds, -3, 508, 6, 8)
    assert valid[0, 3:, :4].all() and not valid[0, :3].any() and not valid[0, :, 4:].any()
    assert (data[0][:, ~valid[0]] == 0).all()


def test_slovenia_date_major_stack_becomes_time_steps(shared_data) -> None:
    src = RasterSource.open(str(real(shared_data, SLOVENIA)), "sentinel2_l1c", ["B04", "B08"])
    assert len(src.dates) == 5 and src.dates == sorted(src.dates)
    assert src.channels[0] == [4, 8] and src.channels[1] == [17, 21]  # date-major, 13 per date
    ts = src.timestamps()
    assert ts.shape == (5, 3) and ts[0].tolist() == [11, 6, 2015]  # 2015-07-11, month 0-based


def test_landsat_descriptions_and_explicit_bands(shared_data) -> None:
    path = str(real(shared_data, LANDSAT))
    src = RasterSource.open(path, "landsat", ["B4", "B3", "B2"])  # described B2_blue ...
    assert src.channels == [[3, 2, 1]]
    src = RasterSource.open(path, "landsat", ["B2"], bands=["B4", "B3", "B2"], when="2016-06-25")
    assert src.channels == [[3]] and src.dates[0].isoformat() == "2016-06-25"


def test_band_mismatch_names_the_missing_bands_and_the_fix(shared_data) -> None:
    with pytest.raises(InferenceError, match=r"lacks the model's sentinel2_l1c band\(s\) B11"):
        RasterSource.open(str(real(shared_data, LANDSAT)), "sentinel2_l1c", ["B02", "B11"])
    with pytest.raises(InferenceError, match="--bands names 1"):
        RasterSource.open(str(real(shared_data, LANDSAT)), "landsat", ["B2"], bands=["B2"])


def test_raster_without_crs_is_refused(shared_data) -> None:
    with pytest.raises(InferenceError, match=r"has no CRS.*georeference it"):
        RasterSource.open(str(real(shared_data, NAIP)), "sentinel2_l1c", ["B02"])


def test_bbox_is_clipped_and_an_outside_bbox_is_empty(shared_data) -> None:
    with rasterio.open(real(shared_data, S2_CHIP)) as ds:
        grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
    assert window_from_bbox(grid, None) == (0, 0, 512, 512)
    west, south, east, north = grid.bounds
    row, col, h, w = window_from_bbox(grid, [west - 1, south - 1, west + 0.001, north + 1])
    assert (row, col, h) == (0, 0, 512) and 0 < w < 20
    with pytest.raises(InferenceError, match=r"does not overlap.*empty"):
        window_from_bbox(grid, [east + 1, south, east + 2, north])
