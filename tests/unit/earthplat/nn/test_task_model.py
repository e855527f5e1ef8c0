"""TaskSpec / TaskModel save and load: every source load_task_model accepts gives the
in-memory model's outputs, and loading an export never imports Lightning."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from earthplat.errors import EarthplatError
from earthplat.nn.encoder import EncoderConfig
from earthplat.nn.export import export_encoder
from earthplat.nn.task_model import TaskModel, TaskSpec, export_task_model, load_task_model
from tests.unit.earthplat.nn.data import make_inputs
from tests.unit.earthplat.nn.task_data import PICO, RESNET, S2, make_spec

REPO = Path(__file__).resolve().parents[4]
CLASSES = [{"value": v, "label": n, "color": "#000000"} for v, n in ((1, "a"), (2, "b"), (5, "c"))]


def _same(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    else:
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _model(task="segmentation", head="upernet", backbone=PICO, **kw):
    torch.manual_seed(0)
    return TaskModel(make_spec(task, head, backbone, **kw)).eval()


def test_spec_round_trips_through_dict_and_validates():
    spec = make_spec("segmentation", "upernet", classes=CLASSES)
    again = TaskSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    with pytest.raises(EarthplatError, match="unknown task"):
        TaskSpec(task="painting", inputs={S2: ["B02"]}, num_outputs=1)
    with pytest.raises(EarthplatError, match="3 classes but num_outputs=2"):
        make_spec("classification", "linear", classes=CLASSES, num_outputs=2)
    with pytest.raises(EarthplatError, match="inputs is empty"):
        TaskSpec(task="regression", inputs={}, num_outputs=1)


@pytest.mark.parametrize(
    ("task", "head", "backbone"),
    [
        ("segmentation", "upernet", PICO),
        ("classification", "linear", PICO),
        ("detection", "centernet", PICO),
        ("pixel_regression", "linear", RESNET),
    ],
)
def test_export_dir_round_trip(tmp_path, task, head, backbone):
    model = _model(task, head, backbone)
    inputs = make_inputs(b=2, t=2, size=24, modalities=(S2,))
    path = export_task_model(model, tmp_path / "m")
    assert {p.name for p in path.iterdir()} == {"model.safetensors", "task.json"}
    loaded = load_task_model(path)
    assert loaded.spec == model.spec
    with torch.no_grad():
        _same(model(inputs), loaded(inputs))


def test_regression_outputs_are_in_target_units():
    model = _model("regression", "mlp", head_kwargs={"target_offset": 700.0, "target_scale": 50.0})
    raw = _model("regression", "mlp")
    inputs = make_inputs(b=2, t=2, size=16, modalities=(S2,))
    with torch.no_grad():
        torch.testing.assert_close(model(inputs), raw(inputs) * 50 + 700)


def _lightning_style_ckpt(model: TaskModel, path: Path) -> Path:
    """What a Lightning checkpoint of a task module holds for load_task_model (the real ones
    are covered by tests/integration/test_finetune.py)."""
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"task_spec": model.spec.to_dict()}}, path)
    return path


def test_checkpoint_and_run_dir_round_trip(tmp_path):
    model = _model()
    inputs = make_inputs(b=2, t=2, size=24, modalities=(S2,))
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = _lightning_style_ckpt(model, run / "checkpoints" / "last.ckpt")
    with torch.no_grad():
        expected = model(inputs)
        _same(expected, load_task_model(ckpt)(inputs))
        _same(expected, load_task_model(run)(inputs))
    # a recorded best checkpoint wins over last.ckpt
    other = _model(head="linear")
    best = _lightning_style_ckpt(other, run / "checkpoints" / "best.ckpt")
    (run / "metrics.json").write_text(json.dumps({"best_checkpoint": str(best)}))
    with torch.no_grad():
        _same(other(inputs), load_task_model(run)(inputs))


def test_encoder_export_and_pretrain_ckpt_load_as_embedding_models(tmp_path):
    torch.manual_seed(0)
    enc = EncoderConfig.pico(modalities=(S2, "sentinel1")).build().eval()
    export_encoder(enc, tmp_path / "enc", extra={"patch_size": 2})
    inputs = make_inputs(b=2, t=2, size=16, modalities=(S2,))
    with torch.no_grad():
        expected = enc(inputs, patch_size=2).feature_map()
        model = load_task_model(tmp_path / "enc")
        assert model.spec.task == "embedding" and model.spec.patch_size == 2
        assert set(model.spec.inputs) == {S2, "sentinel1"}
        _same(expected, model(inputs))
    state = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    cfg = {**enc.config.__dict__, "modalities": list(enc.config.modalities)}
    torch.save({"state_dict": state, "hyper_parameters": {"encoder": cfg}}, tmp_path / "p.ckpt")
    with torch.no_grad():
        _same(enc(inputs, patch_size=4).feature_map(), load_task_model(tmp_path / "p.ckpt")(inputs))


def test_load_errors_name_what_to_give(tmp_path):
    with pytest.raises(EarthplatError, match="not a task model"):
        load_task_model(tmp_path / "nothing")
    with pytest.raises(EarthplatError, match=r"checkpoints/last\.ckpt"):
        load_task_model(tmp_path)


def test_loading_an_export_does_not_import_lightning(tmp_path):
    path = export_task_model(_model(), tmp_path / "m")
    code = (
        "import sys, torch\n"
        "from earthplat.nn.task_model import load_task_model\n"
        f"m = load_task_model({str(path)!r})\n"
        "from earthplat.nn.encoder import ModalityInput\n"
        "x = ModalityInput(torch.zeros(1, 2, 12, 8, 8), torch.ones(1, 2, 8, 8, dtype=torch.bool),"
        " torch.zeros(1, 2, 3, dtype=torch.long))\n"
        "assert m({'sentinel2_l2a': x}).shape == (1, 3, 8, 8)\n"
        "assert 'lightning' not in sys.modules and 'pytorch_lightning' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


def test_sharded_checkpoint_loads_in_one_process(tmp_path):
    """An FSDP2 run's checkpoints are torch.distributed.checkpoint directories plus Lightning's
    meta.pt: one process consolidates the shards; a damaged directory gets a clear error."""
    import torch.distributed.checkpoint as dcp

    model = _model()
    sharded = tmp_path / "run" / "checkpoints" / "last.ckpt"
    dcp.save(
        {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}},
        checkpoint_id=sharded,
    )
    torch.save({"hyper_parameters": {"task_spec": model.spec.to_dict()}}, sharded / "meta.pt")
    for path in (tmp_path / "run", sharded):
        _same(load_task_model(path).state_dict(), model.state_dict())
    (sharded / ".metadata").write_bytes(b"damaged")
    with pytest.raises(EarthplatError, match=r"sharded \(FSDP\) checkpoint.*RUN_DIR/model"):
        load_task_model(sharded)
