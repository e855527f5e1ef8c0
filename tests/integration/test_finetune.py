"""Fine-tuning end to end on real windows: every shipped finetune YAML runs a few steps through
``run_finetune`` (fit, validate, test, export), the exported model matches its checkpoint, the
``earthplat finetune`` command resumes a run dir, and two tasks learn on real batches."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from earthplat.nn.task_model import load_task_model

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1].parent
CONFIGS = sorted((REPO / "earthplat" / "configs" / "finetune").glob("*.yaml"))
EXPECTED = {
    "classification": {"val/accuracy", "val/f1_macro", "test/accuracy", "test/f1_macro"},
    "multilabel": {"val/f1_macro", "val/map"},
    "segmentation": {"val/miou", "val/accuracy", "test/miou"},
    "pixel_regression": {"val/mae", "val/rmse"},
    "regression": {"val/mae", "val/rmse"},
    "detection": {"val/map", "val/map_50"},
}


SHARED = {
    # one Slovenia ingestion serves several configs (each recipe re-ingests the tile):
    # parcels first, then land cover + multilabel (which rewrites the window properties)
    "slovenia_landcover": "slovenia_classes",
    "slovenia_multilabel": "slovenia_classes",
    "slovenia_parcels": "slovenia_classes",
    "slovenia_elevation": "slovenia_elevation",
    "slovenia_mean_elevation": "slovenia_elevation",
}


def _recipe(name: str, real: Path, out: Path) -> Path:
    """The dataset a config reads, built once per test session from the real data."""
    from earthplat.eval import recipes as r

    si = real / "s2_slovenia_eolearn"

    def slovenia_classes(p):
        r.slovenia_parcels_detection(si, p)
        r.slovenia_multilabel(si, p)  # + the land-cover label layer

    builders = {
        "eurosat_cls": lambda p: r.eurosat_classification(
            real / "eurosat_ms_subset", p, limit_per_class=2
        ),
        "sen1floods11": lambda p: r.sen1floods11_water(real / "sen1floods11_spain", p, size=128),
        "slovenia_classes": slovenia_classes,
        "slovenia_elevation": lambda p: r.slovenia_mean_elevation(si, p),  # + elevation layer
    }
    name = SHARED.get(name, name)
    path = out / name
    if not path.exists():
        builders[name](path)
    return path


@pytest.fixture(scope="session")
def datasets(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune_data")
    return lambda name: _recipe(name, shared_data / "real", root)


def _small(cfg: dict, data_path: Path) -> dict:
    """A few CPU steps: pico encoder, 32 px chips, batch 4, small val/test splits."""
    model = cfg["model"]["init_args"]
    if model.get("backbone", {}).get("name", "earthplat") == "earthplat":
        model["backbone"] = {**model["backbone"], "encoder": {"preset": "pico"}}
    if "head" in model and "channels" in model["head"]:
        model["head"]["channels"] = 16
    data = cfg["data"]["init_args"]["config"]
    data.update(path=str(data_path), chip_size=32, batch_size=4)
    data["split"] = {**data["split"], "fractions": {"train": 0.8, "val": 0.1, "test": 0.1}}
    # no validation inside fit: run_finetune validates and tests the final model anyway
    cfg["trainer"].update(
        max_steps=2, val_check_interval=100, limit_val_batches=2, enable_progress_bar=False
    )
    return cfg


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_shipped_finetune_config_runs_tests_and_exports(tmp_path, config, datasets):
    from earthplat.batch import to_model_inputs
    from earthplat.data.finetune import FinetuneDataConfig, FinetuneDataModule
    from earthplat.train.finetune import run_finetune

    cfg = yaml.safe_load(config.read_text())
    data_name = Path(cfg["data"]["init_args"]["config"]["path"]).name
    cfg = _small(cfg, datasets(data_name))
    result = run_finetune(cfg, run_dir=tmp_path / "run")
    task = cfg["data"]["init_args"]["config"]["task"]
    assert EXPECTED[task] <= set(result.metrics), sorted(result.metrics)
    assert all(v == v for v in result.metrics.values())  # no NaN
    assert json.loads((result.run_dir / "metrics.json").read_text()) == pytest.approx(
        result.metrics
    )
    assert (result.run_dir / "config.yaml").exists()
    exported = load_task_model(result.model_dir)
    from_run = load_task_model(result.run_dir)
    assert exported.spec == from_run.spec and exported.spec.task == task
    assert exported.spec.chip_size == 32
    dm = FinetuneDataModule(FinetuneDataConfig(**cfg["data"]["init_args"]["config"]))
    batch = next(iter(dm.val_dataloader()))
    inputs = to_model_inputs(batch)
    with torch.no_grad():
        a, b = exported(inputs), from_run(inputs)
    for x, y in zip(*(list(o.values()) if isinstance(o, dict) else [o] for o in (a, b))):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def _earthplat() -> str:
    path = Path(sys.executable).with_name("earthplat")
    return str(path) if path.exists() else shutil.which("earthplat")


def test_finetune_command_resumes_its_run_dir(tmp_path, datasets):
    config = REPO / "earthplat" / "configs" / "finetune" / "eurosat_nano_frozen_linear.yaml"
    run = tmp_path / "run"
    base = [
        _earthplat(),
        "finetune",
        "--config",
        str(config),
        "--data.init_args.config.path",
        str(datasets("eurosat_cls")),
        "--data.init_args.config.batch_size",
        "4",
        "--model.init_args.backbone",
        '{"name": "earthplat", "encoder": {"preset": "pico"}}',
        "--trainer.run_dir",
        str(run),
        "--trainer.enable_progress_bar",
        "false",
    ]
    first = subprocess.run([*base, "--trainer.max_steps", "1"], capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-4000:]
    second = subprocess.run([*base, "--trainer.max_steps", "2"], capture_output=True, text=True)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-4000:]
    assert "resuming from" in second.stdout + second.stderr
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2
    assert ckpt["hyper_parameters"]["task_spec"]["backbone"]["encoder"]["embed_dim"] == 64
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"val/accuracy", "test/accuracy"} <= set(metrics)
    assert (run / "model" / "task.json").exists()


def _real_batch(dataset: Path, **config):
    from earthplat.data.finetune import FinetuneDataConfig, FinetuneDataModule

    dm = FinetuneDataModule(FinetuneDataConfig(path=str(dataset), **config))
    return next(iter(dm.train_dataloader())), dm


@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_task_learns_a_real_batch(task, datasets):
    """The loss on a fixed real batch falls over a few AdamW steps (the training signal
    reaches the model through targets, masks and the head)."""
    from earthplat.eval.recipes import WATER_CLASSES, eurosat_classes
    from earthplat.train.tasks import get_task_module

    if task == "classification":
        batch, dm = _real_batch(
            datasets("eurosat_cls"),
            task=task,
            classes=eurosat_classes(),
            batch_size=8,
            chip_size=32,
            split={"cell_size_m": 1280},
        )
    else:
        batch, dm = _real_batch(
            datasets("sen1floods11"),
            task=task,
            classes=WATER_CLASSES,
            batch_size=4,
            chip_size=32,
            inputs={"s1": "sentinel1"},
            label={"kind": "layer", "name": "label"},
            split={"cell_size_m": 640},
        )
    torch.manual_seed(0)
    module = get_task_module(task)(
        inputs=dm.input_bands,
        classes=dm.config.classes,
        chip_size=32,
        backbone={"name": "earthplat", "encoder": {"preset": "pico"}},
        head={"name": "linear"}
        if task == "classification"
        else {"name": "upernet", "channels": 16},
    )
    opt = torch.optim.AdamW(module.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        loss = module.compute_loss(module(batch), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(task, [round(v, 3) for v in losses])
    assert losses[-1] < 0.7 * losses[0], losses


def test_overrides_step_into_init_args_and_missing_configs_are_named(tmp_path):
    from earthplat.errors import EarthplatError
    from earthplat.train.finetune import run_finetune, set_dotted

    cfg = {"model": {"class_path": "X", "init_args": {"backbone": {"name": "earthplat"}}}}
    set_dotted(cfg, "model.backbone.pretrained", "/enc")
    set_dotted(cfg, "trainer.max_steps", 3)
    set_dotted(cfg, "model.init_args.freeze", "frozen")
    assert cfg["model"]["init_args"] == {
        "backbone": {"name": "earthplat", "pretrained": "/enc"},
        "freeze": "frozen",
    }
    assert cfg["trainer"] == {"max_steps": 3}
    with pytest.raises(EarthplatError, match="does not exist"):
        run_finetune(tmp_path / "nope.yaml")


def test_best_checkpoint_is_tracked_evaluated_and_exported(tmp_path, datasets):
    """With ``trainer.checkpoint.monitor``, ``best.ckpt`` follows the monitored metric and the
    final metrics and the exported model come from it, not from the last step."""
    from earthplat.nn.task_model import run_checkpoint
    from earthplat.train.finetune import run_finetune

    config = REPO / "earthplat" / "configs" / "finetune" / "eurosat_nano_frozen_linear.yaml"
    cfg = _small(yaml.safe_load(config.read_text()), datasets("eurosat_cls"))
    cfg["trainer"].update(
        max_steps=6,
        val_check_interval=2,
        checkpoint={"every_n_steps": 100, "monitor": "val/accuracy", "mode": "min"},
    )
    cfg["model"]["init_args"]["optimizer"] = {"lr": 0.05}
    result = run_finetune(cfg, run_dir=tmp_path / "run")

    best = result.run_dir / "checkpoints" / "best.ckpt"
    assert result.best_checkpoint == best and best.exists()
    assert run_checkpoint(result.run_dir) == best
    recorded = json.loads((result.run_dir / "metrics.json").read_text())["best_checkpoint"]
    assert recorded == "checkpoints/best.ckpt"  # relative: the run dir may be moved
    ckpt = torch.load(best, map_location="cpu", weights_only=False)
    (state,) = [v for k, v in ckpt["callbacks"].items() if "val/accuracy" in k]
    # the final validation re-scores the selected weights: it reproduces the tracked score
    assert result.metrics["val/accuracy"] == pytest.approx(float(state["best_model_score"]))
    scores = [float(s) for s in state.get("best_k_models", {}).values()]
    assert float(state["best_model_score"]) == min(scores)
    exported = load_task_model(result.model_dir).state_dict()
    best_state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items()}
    for k, v in exported.items():
        torch.testing.assert_close(v, best_state[k], rtol=0, atol=0)
    last = torch.load(result.checkpoint, map_location="cpu", weights_only=False)
    if last["global_step"] != ckpt["global_step"]:
        changed = [
            k for k, v in exported.items() if not torch.equal(v, last["state_dict"]["model." + k])
        ]
        assert changed, "the exported model should hold the best, not the last, weights"
