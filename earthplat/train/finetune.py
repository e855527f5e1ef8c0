"""``earthplat finetune`` and ``run_finetune``: fit a task, evaluate it, export it.

``earthplat finetune --config earthplat/configs/finetune/NAME.yaml [--section.key value ...]``
parses the YAML through LightningCLI (``model:`` a task class from ``earthplat.train.tasks``,
``data:`` a ``FinetuneDataModule``, ``trainer:`` the core's ``TrainerConfig`` fields), then:
fits (resuming ``RUN_DIR/checkpoints/last.ckpt`` when it exists), validates the final model,
tests it when the data have a test split, and writes ``RUN_DIR/config.yaml``,
``RUN_DIR/metrics.json`` and ``RUN_DIR/model/`` (``export_task_model``). Giving a LightningCLI
subcommand first (``fit``, ``validate``, ``test``, ``predict``) runs only that, as plain
LightningCLI does. ``run_finetune`` is the same from Python (used by ``earthplat evaluate``
and the platform's fine-tuning jobs).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from earthplat.errors import EarthplatError

SUBCOMMANDS = ("fit", "validate", "test", "predict")


@dataclass
class FinetuneResult:
    run_dir: Path
    """The run directory."""
    checkpoint: Path | None
    """The final Lightning checkpoint (``checkpoints/last.ckpt``)."""
    metrics: dict[str, float]
    """Final ``val/...`` and (with a test split) ``test/...`` metrics."""
    model_dir: Path
    """The exported task model (``load_task_model`` / ``earthplat predict --model``)."""
    best_checkpoint: Path | None = None
    """With ``trainer.checkpoint.monitor``: the best checkpoint, whose weights were evaluated
    and exported (else the final weights were)."""
    resumed_from: Path | None = None
    """The checkpoint the run resumed from (``None``: it started from scratch)."""


def _cli(args: Any, run: bool, from_argv: bool = False):
    import sys

    kwargs: dict[str, Any] = dict(save_config_kwargs={"overwrite": True})
    if not run:
        kwargs = dict(save_config_callback=None)  # run_finetune writes RUN_DIR/config.yaml
    if from_argv:  # parse ``args``; sys.argv stays whole for Lightning's re-launch of ranks
        return _make_cli(args, run, kwargs)
    argv = sys.argv
    sys.argv = argv[:1]  # a Python call: the host process's own argv is not for this parser
    try:
        return _make_cli(args, run, kwargs)
    finally:
        sys.argv = argv


def _make_cli(args: Any, run: bool, kwargs: dict):
    from earthplat.data.finetune import FinetuneDataModule
    from earthplat.train.lightning_cli import EarthplatCLI, make_trainer
    from earthplat.train.tasks import TaskModule

    return EarthplatCLI(
        TaskModule,
        FinetuneDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_class=make_trainer,
        args=args,
        run=run,
        parser_kwargs={
            "prog": "earthplat finetune",
            "description": "Fine-tune a task model (earthplat.train.tasks).",
        },
        **kwargs,
    )


def run_finetune_cli(args: list[str] | None = None, from_argv: bool = False):
    """``earthplat finetune``: fit + validate + test + export, or one LightningCLI subcommand."""
    args = list(args or [])
    if args and args[0] in SUBCOMMANDS:
        return _cli(args, run=True, from_argv=from_argv)
    result = _fit_and_export(_cli(args, run=False, from_argv=from_argv))
    print(json.dumps({"run_dir": str(result.run_dir), "metrics": result.metrics}, indent=2))
    return result


def run_finetune(
    config: str | Path | dict,
    run_dir: str | Path | None = None,
    overrides: dict | None = None,
    *,
    callbacks: list | None = None,
) -> FinetuneResult:
    """Fine-tune from a YAML path or config dict. ``overrides`` maps dotted keys to values
    (``{"trainer.max_steps": 10, "data.config.path": "..."}``; ``init_args`` levels may be left
    out); ``run_dir`` sets ``trainer.run_dir``; ``callbacks`` (Lightning callbacks) join the
    trainer's own (the platform's job progress and cancellation). A run dir with a last
    checkpoint resumes from it (``FinetuneResult.resumed_from``)."""
    if isinstance(config, dict):
        cfg = copy.deepcopy(config)
    else:
        path = Path(config)
        if not path.exists():
            raise EarthplatError(f"finetune config {path} does not exist")
        cfg = yaml.safe_load(path.read_text())
    for key, value in (overrides or {}).items():
        set_dotted(cfg, key, value)
    if run_dir is not None:
        set_dotted(cfg, "trainer.run_dir", str(run_dir))
    cli = _cli(cfg, run=False)
    cli.trainer.callbacks.extend(callbacks or [])
    return _fit_and_export(cli)


def set_dotted(cfg: dict, key: str, value: Any) -> None:
    """``cfg[a][b][c] = value`` for ``key = "a.b.c"``, stepping into ``init_args`` where the
    config chose a class (``class_path``) and the key skips that level."""
    parts = key.split(".")
    node = cfg
    for part in parts[:-1]:
        if part not in node and "init_args" in node:
            node = node["init_args"]
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise EarthplatError(f"override {key!r}: {part!r} is not a section")
    if parts[-1] not in node and "init_args" in node:
        node = node["init_args"]
    node[parts[-1]] = value


def _has_split(datamodule, split: str) -> bool:
    windows = getattr(datamodule, "windows", None)
    if windows is None:
        return True
    try:
        return bool(windows(split))
    except EarthplatError:
        return False


def _fit_and_export(cli) -> FinetuneResult:
    import torch

    from earthplat.nn.task_model import export_task_model
    from earthplat.traincore.checkpoint import best_checkpoint
    from earthplat.traincore.parallel import full_state_dict

    trainer, module, dm = cli.trainer, cli.model, cli.datamodule
    run_dir = Path(trainer.default_root_dir)
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(cli.parser.dump(cli.config, skip_check=True))
    resume = cli.resume_checkpoint()
    trainer.fit(module, datamodule=dm, ckpt_path=str(resume) if resume else None)
    last = run_dir / "checkpoints" / "last.ckpt"
    # decided once for all ranks: saving is a collective (a barrier; shards under FSDP2)
    if not trainer.strategy.broadcast(last.exists()):
        trainer.save_checkpoint(last)
    best = best_checkpoint(trainer)
    if best is not None:  # evaluate and export the best weights, not the last
        print(f"evaluating and exporting the best checkpoint, {best}")
    metrics: dict[str, float] = {}
    loaded = False
    for stage, run_stage in (("val", trainer.validate), ("test", trainer.test)):
        if not _has_split(dm, stage):
            continue
        # the strategy restores the weights on every rank (sharded checkpoints included)
        ckpt = str(best) if best is not None else None
        for results in run_stage(module, datamodule=dm, verbose=False, ckpt_path=ckpt):
            metrics.update({k: float(v) for k, v in results.items() if k.startswith(stage)})
        loaded = True
    if best is not None and not loaded:
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
    model_dir = run_dir / "model"
    state = full_state_dict(module.model)  # gathers FSDP2 shards: every rank takes part
    if trainer.is_global_zero:
        export_task_model(module.model, model_dir, state)
        record: dict[str, Any] = dict(metrics)
        if best is not None:  # relative: the run dir may move (project deletion keeps models)
            record["best_checkpoint"] = (
                str(best.relative_to(run_dir)) if best.is_relative_to(run_dir) else str(best)
            )
        (run_dir / "metrics.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    trainer.strategy.barrier("earthplat-export")  # every rank returns a written model dir
    return FinetuneResult(run_dir, last, metrics, model_dir, best, resume)
