"""Detections from overlapping tiles are kept once, by the tile that owns them, and come out as
WGS84 points; a per-pixel heatmap makes the expected set computable on the whole area."""

from __future__ import annotations

import json

import numpy as np
import rasterio
import torch
import torch.nn.functional as F
from torch import nn

from earthplat.inference import predict
from earthplat.nn.heads import decode_centernet
from earthplat.nn.task_model import TaskSpec
from earthplat.sensors import normalize
from tests.unit.earthplat.inference.models import CHIP_BBOX, S2_CHIP, S2_DATE, WATER, real

THRESHOLD = 0.9


class PeakModel(nn.Module):
    """Heatmap = a per-pixel water index; zero-size boxes (points) at its local maxima."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = TaskSpec(
            task="detection",
            inputs={"sentinel2_l1c": ["B03", "B08"]},
            num_outputs=1,
            classes=WATER[1:],
            patch_size=1,
            chip_size=32,
            head={"name": "centernet"},
        )

    def forward(self, inputs):
        x = inputs["sentinel2_l1c"].data.mean(1)  # [B, 2, H, W]
        heat = 20 * (x[:, :1] - x[:, 1:])
        zeros = torch.zeros_like(heat).expand(-1, 2, -1, -1)
        return {"heatmap": heat, "size": zeros, "offset": zeros}

    def decode_detections(self, out, threshold=0.3, max_per_image=100, image_size=None):
        return decode_centernet(out, 1.0, threshold, 10_000, image_size)


def test_overlapping_tiles_keep_each_detection_once(shared_data, tmp_path) -> None:
    path = real(shared_data, S2_CHIP)
    out = tmp_path / "peaks.tif"
    result = predict(
        PeakModel(),
        path,
        out,
        bbox=CHIP_BBOX,
        date=S2_DATE,
        overlap=16,
        chunk_size=64,
        threshold=THRESHOLD,
    )
    feats = json.loads(out.with_suffix(".geojson").read_text())["features"]
    assert len(feats) == result.sizes["detection"] > 5
    points = {tuple(np.round(f["geometry"]["coordinates"], 7)) for f in feats}
    assert len(points) == len(feats)  # no duplicates from the overlaps
    assert all(f["geometry"]["type"] == "Point" for f in feats)

    # the same peaks found on the whole area at once (3x3 NMS), away from the area's border
    with rasterio.open(path) as ds:
        win = rasterio.windows.from_bounds(*CHIP_BBOX, transform=ds.transform).round_offsets()
        win = rasterio.windows.Window(win.col_off, win.row_off, 156, 134)
        raw = ds.read([3, 8], window=win).astype(np.float32)
        transform = ds.window_transform(win)
    x = torch.from_numpy(normalize(raw, "sentinel2_l1c", ("B03", "B08")))[None]
    heat = torch.sigmoid(20 * (x[:, :1] - x[:, 1:]))
    peaks = (heat == F.max_pool2d(heat, 3, 1, 1)) & (heat >= THRESHOLD)
    peaks[..., :16, :] = peaks[..., -16:, :] = False  # tiles at the area's edge see less context
    peaks[..., :, :16] = peaks[..., :, -16:] = False
    rows, cols = np.nonzero(peaks[0, 0].numpy())
    expected = {tuple(np.round(transform @ (c, r), 7)) for r, c in zip(rows, cols)}
    assert expected and expected <= points
