"""Model cards and comparisons: test metrics, which of two values is better, the encoder a
config starts from and how an encoder id rewrites a config's backbone."""

from __future__ import annotations

import pytest

from labeling.models import ModelEntry
from labeling.services import model_card
from labeling.services.encoders import apply_encoder, encoder_of, parse_encoder
from labeling.services.errors import InvalidInputError
from labeling.services.model_card import better, compare


def test_test_metrics_are_the_test_split_else_all() -> None:
    assert model_card.test_metrics({"val/miou": 0.5, "test/miou": 0.4}) == {"test/miou": 0.4}
    assert model_card.test_metrics({"val/miou": 0.5}) == {"val/miou": 0.5}


@pytest.mark.parametrize(
    ("name", "a", "b", "want"),
    [
        ("test/miou", 0.6, 0.5, "a"),
        ("test/loss", 0.6, 0.5, "b"),
        ("val/RMSE", 1.0, 2.0, "a"),
        ("test/mae", 3.0, 2.0, "b"),
        ("test/abs_error", 1.0, 2.0, "a"),
        ("test/accuracy", 0.9, 0.9, None),
    ],
)
def test_higher_is_better_except_losses_and_errors(name, a, b, want) -> None:
    assert better(name, a, b) == want


def test_compare_takes_shared_numeric_metrics_and_refuses_other_task_types() -> None:
    a = ModelEntry(id=1, task_type="segmentation", metrics={"test/loss": 1.0, "test/miou": 0.5})
    b = ModelEntry(id=2, task_type="segmentation", metrics={"test/loss": 2.0, "val/miou": 0.1})
    got = compare(a, b, {"test_windows": [1, 2, 3]}, {"test_windows": [2, 3, 4]})
    assert got["metrics"] == [{"name": "test/loss", "a": 1.0, "b": 2.0, "better": "a"}]
    assert got["test_windows"] == {"a": [1, 2, 3], "b": [2, 3, 4], "intersection": [2, 3]}
    assert compare(a, b, {}, {"test_windows": []})["test_windows"]["intersection"] is None
    with pytest.raises(InvalidInputError, match="do not compare"):
        compare(a, ModelEntry(id=3, task_type="classification", metrics={}), {}, {})


def _config(backbone: dict | None) -> dict:
    init = {"freeze": "none"} if backbone is None else {"backbone": backbone, "freeze": "none"}
    return {"model": {"class_path": "earthplat.train.tasks.SegmentationTask", "init_args": init}}


@pytest.mark.parametrize(
    ("backbone", "parent", "want"),
    [
        ({"name": "earthplat", "encoder": {"preset": "pico"}}, None, "preset:pico"),
        (None, None, "preset:nano"),  # the task module's default
        ({"name": "timm", "model": "resnet18"}, None, "timm:resnet18"),
        ({"name": "earthplat", "pretrained": "/m/7/model"}, 7, "model:7"),
        ({"name": "earthplat", "pretrained": "/enc"}, None, "pretrained:/enc"),
        ({"name": "earthplat", "encoder": {"embed_dim": 64}}, None, "custom"),
    ],
)
def test_the_encoder_a_config_starts_from(backbone, parent, want) -> None:
    assert encoder_of(_config(backbone), parent_id=parent) == want
    recorded = {**_config(backbone), "platform": {"encoder": "model:9"}}
    assert encoder_of(recorded) == "model:9"  # what the job recorded wins


def test_apply_encoder_replaces_the_backbone_but_keeps_how_it_trains() -> None:
    cfg = _config({"name": "timm", "model": "resnet18", "freeze": "frozen"})
    apply_encoder(cfg, "preset:tiny")
    assert cfg["model"]["init_args"]["backbone"] == {
        "name": "earthplat",
        "freeze": "frozen",
        "encoder": {"preset": "tiny"},
    }
    apply_encoder(cfg, "model:4", model_dir="/runs/4/model")
    assert cfg["model"]["init_args"]["backbone"] == {
        "name": "earthplat",
        "freeze": "frozen",
        "pretrained": "/runs/4/model",
    }
    assert encoder_of(cfg, parent_id=4) == "model:4"
    with pytest.raises(InvalidInputError, match="not an encoder id") as err:
        parse_encoder("nano")
    assert "preset:NAME, model:ID or olmoearth:NAME" in err.value.fix
