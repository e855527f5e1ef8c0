"""Small seeded task models and real-data paths for the inference tests."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from earthplat.nn.task_model import TaskModel, TaskSpec
from earthplat.sensors import S2_L1C_ORDER

SEN1FLOODS = "real/sen1floods11_spain"
S2_CHIP = f"{SEN1FLOODS}/Spain_7370579_S2Hand.tif"
S2_DATE = "2019-09-18"
"""Acquisition date of the Sen1Floods11 S2 chip (its README; the file names none)."""
S1_CHIP = f"{SEN1FLOODS}/Spain_7370579_S1Hand.tif"
SLOVENIA = "real/s2_slovenia_eolearn/s2_l1c_5dates_13bands.tif"
LANDSAT = "real/landsat/landsat8_LC80460282016177_B2B3B4_crop512.tif"
NAIP = "real/chesapeake_naip_geobench/id_000051_naip_rgbn.tif"
WATER = [
    {"value": 0, "label": "land", "color": "#a08050"},
    {"value": 1, "label": "water", "color": "#1f5fff"},
]
CHIP_BBOX = [-0.7800, 38.0860, -0.7660, 38.0980]
"""A ~150 x 130 px part of the Sen1Floods11 chip (EPSG:4326) with land and water."""


class WaterIndexModel(nn.Module):
    """A per-pixel (translation-equivariant) segmentation model: NDWI-like green minus NIR.

    Behaves like a TaskModel (``spec``, ``forward(inputs)``) so the inference code treats it as
    one; its output at a pixel depends on that pixel only, so blending must not change it."""

    def __init__(self, task: str = "segmentation", chip: int = 32) -> None:
        super().__init__()
        classes = WATER if task == "segmentation" else []
        n = 2 if task == "segmentation" else 1
        self.spec = TaskSpec(
            task=task,
            inputs={"sentinel2_l1c": ["B03", "B08"]},
            num_outputs=n,
            classes=classes,
            patch_size=1,
            chip_size=chip,
            head={"name": "linear"},
        )
        self.conv = nn.Conv2d(2, n, 1)
        with torch.no_grad():
            w = (
                torch.tensor([[-4.0, 4.0], [4.0, -4.0]])[:n]
                if n == 2
                else torch.tensor([[4.0, -4.0]])
            )
            self.conv.weight.copy_(w[:, :, None, None])
            self.conv.bias.zero_()

    def forward(self, inputs):
        x = inputs["sentinel2_l1c"].data.mean(1)  # [B, C, H, W]
        return self.conv(x)


def pico_model(task: str = "segmentation", *, chip: int = 32, seed: int = 0, **spec) -> TaskModel:
    """A random-init pico-encoder TaskModel on the 13 L1C bands of the Sen1Floods11 chip."""
    torch.manual_seed(seed)
    heads = {
        "segmentation": "linear",
        "pixel_regression": "linear",
        "classification": "linear",
        "multilabel": "linear",
        "regression": "linear",
        "detection": "centernet",
        "embedding": "identity",
    }
    classes = WATER if task in ("segmentation", "classification", "multilabel", "detection") else []
    n = {"embedding": 64, "pixel_regression": 2, "regression": 1}.get(task, 2)
    defaults = dict(
        task=task,
        inputs={"sentinel2_l1c": list(S2_L1C_ORDER)},
        num_outputs=n,
        classes=classes,
        patch_size=4,
        chip_size=chip,
        backbone={
            "name": "earthplat",
            "encoder": {"preset": "pico", "modalities": ["sentinel2_l1c", "sentinel1", "landsat"]},
        },
        head={"name": heads[task]},
    )
    defaults.update(spec)
    return TaskModel(TaskSpec(**defaults)).eval()


def real(shared_data: Path, rel: str) -> Path:
    path = shared_data / rel
    if not path.exists():
        import pytest

        pytest.skip(f"missing component: {path}")
    return path
