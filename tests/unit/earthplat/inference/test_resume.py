"""An interrupted prediction resumes from the chunks on disk and ends identical."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from earthplat.inference import predict
from tests.unit.earthplat.inference.models import CHIP_BBOX, S2_CHIP, S2_DATE, pico_model, real


class Interrupt(RuntimeError):
    pass


def test_interrupted_run_resumes_and_matches(shared_data, tmp_path) -> None:
    torch.set_num_threads(1)
    path, model = real(shared_data, S2_CHIP), pico_model("segmentation", seed=1)
    kw = dict(bbox=CHIP_BBOX, date=S2_DATE, chunk_size=48, outputs=["cog"])
    reference = predict(model, path, tmp_path / "ref.tif", **kw).values

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise Interrupt("killed after 2 chunks")

    out = tmp_path / "run.tif"
    with pytest.raises(Interrupt):
        predict(model, path, out, progress=stop_after_two, **kw)
    parts = sorted((tmp_path / "run.tif.parts").glob("chunk_*.npz"))
    assert len(parts) == 2 and not out.exists()

    calls: list[tuple[int, int]] = []
    resumed = predict(model, path, out, progress=lambda d, t: calls.append((d, t)), **kw)
    total = calls[-1][1]
    assert total == 12 and len(calls) == total - 2 and calls[0][0] == 3  # 2 chunks skipped
    np.testing.assert_array_equal(resumed.values, reference)
    with rasterio.open(out) as a, rasterio.open(tmp_path / "ref.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
    assert not (tmp_path / "run.tif.parts").exists()


def test_parts_of_a_different_run_are_discarded(shared_data, tmp_path) -> None:
    path = real(shared_data, S2_CHIP)
    kw = dict(bbox=CHIP_BBOX, date=S2_DATE, chunk_size=64, outputs=["cog"], keep_parts=True)
    out = tmp_path / "p.tif"
    predict(pico_model("pixel_regression", seed=0), path, out, **kw)
    first = (out.parent / "p.tif.parts" / "chunk_000000.npz").read_bytes()
    calls: list[int] = []
    predict(
        pico_model("pixel_regression", seed=5),
        path,
        out,
        progress=lambda d, t: calls.append(d),
        **kw,
    )
    assert len(calls) == 9  # every chunk recomputed: another model's parts are not reused
    assert (out.parent / "p.tif.parts" / "chunk_000000.npz").read_bytes() != first
