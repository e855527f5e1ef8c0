"""Tiny task specs and inputs shared by the task-model tests."""

from __future__ import annotations

from earthplat.nn.task_model import TaskSpec
from earthplat.sensors import get_modality

S2 = "sentinel2_l2a"
S2_BANDS = list(get_modality(S2).band_names)
PICO = {"name": "earthplat", "encoder": {"preset": "pico", "modalities": [S2]}}
RESNET = {"name": "timm", "model": "mobilenetv3_small_050"}
"""A tiny timm CNN (0.3 M parameters) keeps the tests fast; configs use resnet18."""
NUM_OUTPUTS = {"embedding": 64}


def make_spec(task: str, head: str, backbone: dict = PICO, patch_size: int = 4, **kw) -> TaskSpec:
    return TaskSpec(
        task=task,
        inputs={S2: S2_BANDS},
        num_outputs=kw.pop("num_outputs", NUM_OUTPUTS.get(task, 3)),
        patch_size=patch_size if backbone["name"] == "earthplat" else 1,
        num_periods=2,
        backbone=dict(backbone),
        head={"name": head, **kw.pop("head_kwargs", {})},
        **kw,
    )
