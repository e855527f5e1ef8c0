"""Every task of the output registry predicts a real chip into the right raster or features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from earthplat.inference import predict
from earthplat.tasks import TASKS
from tests.unit.earthplat.inference.models import CHIP_BBOX, S2_CHIP, S2_DATE, pico_model, real

EXPECTED = {  # task -> (bands, dtype, output pixel size in input pixels)
    "segmentation": (1, "uint8", 1),
    "pixel_regression": (2, "float32", 1),
    "embedding": (64, "float32", 4),
    "classification": (1, "uint8", 32),
    "multilabel": (2, "float32", 32),
    "regression": (1, "float32", 32),
}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_predicts_the_chip(task: str, shared_data, tmp_path) -> None:
    torch.set_num_threads(1)
    path = real(shared_data, S2_CHIP)
    result = predict(
        pico_model(task),
        path,
        tmp_path / "p.tif",
        bbox=CHIP_BBOX,
        date=S2_DATE,
        chunk_size=64,
        threshold=0.05,
    )
    assert (tmp_path / "p.item.json").exists()
    if task == "detection":
        assert result.sizes["detection"] > 0
        assert set(result.data_vars) >= {"label", "score", "geometry"}
        assert (result["score"].values >= 0.05).all()
        collection = json.loads((tmp_path / "p.geojson").read_text())
        assert len(collection["features"]) == result.sizes["detection"]
        return
    bands, dtype, px = EXPECTED[task]
    assert result.sizes["band"] == bands and str(result.dtype) == dtype
    assert result.rio.crs.to_epsg() == 4326
    assert result.sizes["y"] == -(-134 // px) and result.sizes["x"] == -(-156 // px)
    assert abs(result.rio.transform().a - 8.983152841195214e-05 * px) < 1e-12
    if dtype == "float32":
        assert np.isfinite(result.values).all()
        assert result.values.std() > 0  # the model's output, not a constant fill
    else:
        assert set(np.unique(result.values)) <= {0, 1}
