"""Bad inputs fail early with a message naming the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from earthplat.errors import DataError, NoDataError
from earthplat.inference import predict
from earthplat.inference.errors import InferenceError
from earthplat.nn.task_model import export_task_model
from tests.unit.earthplat.inference.models import (
    LANDSAT,
    NAIP,
    S2_CHIP,
    S2_DATE,
    WaterIndexModel,
    pico_model,
    real,
)


def test_checkpoint_bands_that_do_not_match_the_input(shared_data, tmp_path) -> None:
    s1_model = pico_model("segmentation", inputs={"sentinel1": ["VV", "VH"]})
    export = export_task_model(s1_model, tmp_path / "s1_model")
    with pytest.raises(InferenceError, match=r"cannot tell which sentinel1 band.*check --modality"):
        predict(str(export), real(shared_data, S2_CHIP), tmp_path / "x.tif", date=S2_DATE)
    with pytest.raises(InferenceError, match="pass --bands naming each file band"):
        predict(pico_model(), real(shared_data, LANDSAT), tmp_path / "y.tif")
    with pytest.raises(InferenceError, match="the model reads sentinel2_l1c, not landsat"):
        predict(pico_model(), real(shared_data, LANDSAT), tmp_path / "z.tif", modality="landsat")


def test_raster_without_crs(shared_data, tmp_path) -> None:
    with pytest.raises(InferenceError, match="no CRS") as err:
        predict(WaterIndexModel(), real(shared_data, NAIP), tmp_path / "x.tif", bands=list("ABCD"))
    assert isinstance(err.value, DataError)


def test_bbox_outside_the_raster(shared_data, tmp_path) -> None:
    with pytest.raises(InferenceError, match="does not overlap"):
        predict(
            WaterIndexModel(),
            real(shared_data, S2_CHIP),
            tmp_path / "x.tif",
            bbox=[10, 50, 11, 51],
            date=S2_DATE,
        )


def test_all_nodata_raster(shared_data, tmp_path) -> None:
    """The real chip with every pixel set to its nodata value (0)."""
    src = real(shared_data, S2_CHIP)
    empty = tmp_path / "empty.tif"
    with rasterio.open(src) as ds:
        profile, descriptions = ds.profile, ds.descriptions
    with rasterio.open(empty, "w", **profile) as dst:
        dst.write(np.zeros((profile["count"], profile["height"], profile["width"]), "int16"))
        for i, d in enumerate(descriptions, start=1):
            dst.set_band_description(i, d)
    with pytest.raises(NoDataError, match="only nodata"):
        predict(WaterIndexModel(), empty, tmp_path / "x.tif", date=S2_DATE)
    assert not (tmp_path / "x.tif").exists()
