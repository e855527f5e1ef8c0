"""Blending and chunking: overlap does not change a per-pixel model, and chunk borders leave
no seams (the result does not depend on the chunk size)."""

from __future__ import annotations

import numpy as np
import torch

from earthplat.inference import predict
from tests.unit.earthplat.inference.models import (
    CHIP_BBOX,
    S2_CHIP,
    S2_DATE,
    WaterIndexModel,
    pico_model,
    real,
)


def test_per_pixel_model_is_unchanged_by_overlap(shared_data, tmp_path) -> None:
    path, model = real(shared_data, S2_CHIP), WaterIndexModel("pixel_regression")
    kw = dict(bbox=CHIP_BBOX, date=S2_DATE, chunk_size=64, outputs=["cog"])
    plain = predict(model, path, tmp_path / "a.tif", overlap=0, **kw).values
    blended = predict(model, path, tmp_path / "b.tif", overlap=12, **kw).values
    assert plain.shape == (1, 134, 156) and plain.std() > 0.1
    np.testing.assert_allclose(blended, plain, rtol=1e-5, atol=1e-5)


def test_chunk_borders_leave_no_seams(shared_data, tmp_path) -> None:
    """A context-dependent model (pico encoder + linear head): one chunk or many, same values."""
    torch.set_num_threads(1)
    path, model = real(shared_data, S2_CHIP), pico_model("pixel_regression")
    kw = dict(bbox=CHIP_BBOX, date=S2_DATE, overlap=8, outputs=["cog"], batch_size=4)
    whole = predict(model, path, tmp_path / "whole.tif", chunk_size=512, **kw).values
    chunked = predict(model, path, tmp_path / "chunked.tif", chunk_size=40, **kw).values
    assert whole.shape == (2, 134, 156) and whole.std() > 0
    np.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-5)
    # and the overlap matters for such a model: blending changes values near tile edges
    no_overlap = predict(
        model, path, tmp_path / "none.tif", chunk_size=512, **{**kw, "overlap": 0}
    ).values
    assert np.abs(no_overlap - whole).max() > 1e-4
