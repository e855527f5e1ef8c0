"""Backbones: registry, multi-scale outputs, pretrained encoders, timm input stacking."""

import pytest
import torch

from earthplat.errors import EarthplatError
from earthplat.nn.backbones import BACKBONES, TimmBackbone, build_backbone
from earthplat.nn.encoder import EncoderConfig
from earthplat.nn.export import export_encoder
from earthplat.nn.task_model import TaskModel
from tests.unit.earthplat.nn.data import make_inputs
from tests.unit.earthplat.nn.task_data import PICO, RESNET, S2, S2_BANDS, make_spec

OLMOEARTH_PICO = {
    "name": "olmoearth",
    "checkpoint": "not read: the encoder config below rebuilds it",
    "encoder": {"preset": "pico", "encodings": "olmoearth", "patch_resize": "image",
                "project_tokens": False, "modalities": [S2]},
}  # fmt: skip
CONFIGS = {"earthplat": PICO, "olmoearth": OLMOEARTH_PICO, "timm": RESNET}


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_returns_pyramid_and_pooled(name):
    torch.manual_seed(0)
    bb = build_backbone(make_spec("segmentation", "upernet", CONFIGS[name]))
    out = bb(make_inputs(b=2, t=2, size=32, modalities=(S2,)))
    assert len(out.features) == len(bb.channels) == len(out.strides)
    for f, c, s in zip(out.features, bb.channels, out.strides, strict=True):
        assert f.shape[:2] == (2, c)
        assert f.shape[-1] == pytest.approx(32 / s, abs=1)
    assert out.pooled.shape == (2, bb.pooled_dim)
    out.pooled.sum().backward()
    assert any(p.grad is not None for p in bb.parameters())


def test_pretrained_encoder_weights_are_loaded(tmp_path):
    torch.manual_seed(1)
    enc = EncoderConfig.pico(modalities=(S2,)).build()
    export_encoder(enc, tmp_path / "enc")
    spec = make_spec(
        "classification", "linear", {"name": "earthplat", "pretrained": str(tmp_path / "enc")}
    )
    model = TaskModel(spec, load_pretrained=True)
    for k, v in enc.state_dict().items():
        assert torch.equal(model.backbone.encoder.state_dict()[k], v)
    with pytest.raises(EarthplatError, match="not found"):
        TaskModel(
            make_spec(
                "classification", "linear", {"name": "earthplat", "pretrained": str(tmp_path / "x")}
            ),
            load_pretrained=True,
        )


def test_a_fine_tuned_task_models_encoder_starts_another(tmp_path):
    """``pretrained`` may name an exported task model: its encoder (not its head) is loaded;
    a task model without an earthplat encoder is refused, naming what it has."""
    from earthplat.nn.task_model import export_task_model

    torch.manual_seed(2)
    parent = TaskModel(make_spec("segmentation", "linear"))
    export_task_model(parent, tmp_path / "parent")
    child = TaskModel(
        make_spec(
            "classification",
            "linear",
            {"name": "earthplat", "pretrained": str(tmp_path / "parent")},
        ),
        load_pretrained=True,
    )
    for k, v in parent.backbone.encoder.state_dict().items():
        assert torch.equal(child.backbone.encoder.state_dict()[k], v)
    assert child.backbone.encoder.training
    export_task_model(TaskModel(make_spec("segmentation", "linear", RESNET)), tmp_path / "cnn")
    with pytest.raises(EarthplatError, match="TimmBackbone, not an earthplat encoder"):
        TaskModel(
            make_spec(
                "segmentation", "linear", {"name": "earthplat", "pretrained": str(tmp_path / "cnn")}
            ),
            load_pretrained=True,
        )


def test_encoder_modalities_default_to_the_inputs():
    spec = make_spec(
        "classification", "linear", {"name": "earthplat", "encoder": {"preset": "pico"}}
    )
    assert TaskModel(spec).backbone.encoder.config.modalities == (S2,)


def test_timm_stacks_bands_by_name_and_periods():
    bb = TimmBackbone("resnet18", {S2: ["B04", "B02"]}, num_periods=2)
    inputs = make_inputs(b=1, t=3, size=8, modalities=(S2,), missing=False)
    x = bb.stack(inputs)  # last 2 periods x [B04, B02]
    d = inputs[S2].data
    i4, i2 = S2_BANDS.index("B04"), S2_BANDS.index("B02")
    assert torch.equal(x[0], torch.stack([d[0, 1, i4], d[0, 1, i2], d[0, 2, i4], d[0, 2, i2]]))
    with pytest.raises(EarthplatError, match="lacks bands"):
        bad = TimmBackbone("resnet18", {S2: ["B04"]})
        inputs[S2].bands = ("B02",)
        bad.stack(inputs)


def test_unknown_backbone_and_freeze_mode():
    with pytest.raises(EarthplatError, match="unknown backbone"):
        build_backbone(make_spec("classification", "linear", {"name": "nope"}))
    with pytest.raises(EarthplatError, match="freeze"):
        build_backbone(make_spec("classification", "linear", {**PICO, "freeze": "sometimes"}))
