"""``finetune``: export the project's accepted annotations, fine-tune, register the model.

Payload::

    {"config": "sen1floods11_nano_upernet_s2" | {...a full config dict...},
         # a shipped config (earthplat/configs/finetune/NAME.yaml); default: one for the task
     "overrides": {"trainer.max_steps": 100, ...},   # dotted keys, as run_finetune takes them
         # ("trainer.checkpoint.monitor": "val/miou" exports the best validation checkpoint)
     "statuses": ["accepted"],                       # windows whose annotations are used
     "dataset": "default", "layers": null,           # imagery layers to train on (default all)
     "name": "model name"}                           # default: PROJECT-jobID

Steps (each one resumable, so a reclaimed job continues instead of starting over):

1. export (``labeling.export.export_dataset``) into ``projects/ID/exports/job-ID``, skipped
   when an earlier attempt finished it (``export.json`` present);
2. ``earthplat.train.finetune`` with ``run_dir = projects/ID/runs/job-ID``: a restarted job
   resumes from the run's last checkpoint; a callback reports progress, stops at the next
   step on cancel or shutdown (saving ``last.ckpt`` first on shutdown);
3. the model registry entry (``labeling.services.registry.register_model``), once per job.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from api.jobs.context import JobCancelled, JobContext, JobInterrupted, PermanentJobError
from api.jobs.handlers.common import project_windows


def _load_config(spec: Any, task: str) -> dict:
    """The payload's config (a dict, or a shipped config's name), else the task's default
    (``earthplat.tasks``: ``default_config``)."""
    import yaml

    from earthplat.configs import config_path
    from earthplat.errors import EarthplatError
    from earthplat.tasks import get_task

    if isinstance(spec, dict):
        return spec
    name = spec or get_task(task).default_config
    if not name:
        raise PermanentJobError(f"no default fine-tuning config for task {task!r}; give config")
    try:
        return yaml.safe_load(config_path("finetune", name).read_text())
    except EarthplatError as err:
        raise PermanentJobError(str(err)) from None


def export_training_data(ctx: JobContext, out: Path) -> dict:
    """Export once; later attempts reuse it (the run must resume on the same data)."""
    from sqlalchemy import select

    from labeling.export import annotation_feature, export_dataset
    from labeling.models import Annotation, Project, User, WindowRecord

    if (out / "export.json").is_file():
        ctx.log(f"reusing the export of an earlier attempt: {out}")
        return json.loads((out / "export.json").read_text())
    params = ctx.params
    root, rows = project_windows(ctx, params)
    statuses = list(params.statuses)
    rows = [r for r in rows if r.status in statuses]
    if not rows:
        raise PermanentJobError(f"no window of the dataset is {' or '.join(statuses)}")
    with ctx.session_factory() as s:
        project = s.get(Project, ctx.project_id)
        task, classes = project.task_type, list(project.classes or [])
        query = (
            select(Annotation, WindowRecord.name, User.name)
            .join(WindowRecord, WindowRecord.id == Annotation.window_id)
            .outerjoin(User, User.id == Annotation.author_id)
            .where(Annotation.window_id.in_([r.id for r in rows]))
            .order_by(Annotation.id)
        )
        features = [
            annotation_feature(a, window=wname, author=author)
            for a, wname, author in s.execute(query)
        ]
    labelled = {f["properties"]["window"] for f in features}
    rows = [r for r in rows if r.name in labelled]
    if not rows:
        raise PermanentJobError("the selected windows hold no annotation to train on")
    ctx.log(f"exporting {len(rows)} window(s), {len(features)} annotation(s) ({task})")
    export_dataset(
        [r.to_window() for r in rows],
        features,
        classes,
        out,
        task=task,
        source=root,
        layers=params.layers,
    )
    return json.loads((out / "export.json").read_text())


def _callback(ctx: JobContext, run_dir: Path, max_steps: int):
    import lightning as L

    class JobCallback(L.Callback):
        """Progress into the job row; stop at a step boundary on cancel or shutdown."""

        def on_train_start(self, trainer, pl_module) -> None:
            if trainer.ckpt_path:  # run_finetune decided to resume the run
                ctx.log(f"resuming from {Path(trainer.ckpt_path).name}")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            step = trainer.global_step
            if max_steps > 0 and (step % max(1, max_steps // 50) == 0 or step == max_steps):
                ctx.progress(0.05 + 0.85 * step / max_steps, f"training step {step}/{max_steps}")
            if ctx.stop_event.is_set() and not ctx.cancel_event.is_set():
                trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt")
                ctx.log(f"saved last.ckpt at step {step} before stopping")
            ctx.check()  # raises JobCancelled / JobInterrupted; Lightning tears down, re-raises

    return JobCallback()


def _train(ctx: JobContext, cfg: dict, run_dir: Path):
    """``run_finetune`` with the job's progress/cancel callback; it decides whether to resume
    (a restarted job continues from the run dir's last checkpoint)."""
    from earthplat.train.finetune import run_finetune, set_dotted

    set_dotted(cfg, "trainer.enable_progress_bar", False)
    max_steps = int((cfg.get("trainer") or {}).get("max_steps") or -1)
    result = run_finetune(cfg, run_dir=run_dir, callbacks=[_callback(ctx, run_dir, max_steps)])
    return result, result.resumed_from


def run(ctx: JobContext) -> dict[str, Any]:
    from earthplat.train.finetune import set_dotted
    from labeling.models import ModelEntry, Project
    from labeling.services.registry import register_model

    project_dir = ctx.project_dir()
    with ctx.session_factory() as s:
        project = s.get(Project, ctx.project_id)
        if project is None:
            raise PermanentJobError(f"project {ctx.project_id} no longer exists")
        task, pname = project.task_type, project.name
    export_dir = project_dir / "exports" / f"job-{ctx.job_id}"
    info = export_training_data(ctx, export_dir)
    ctx.progress(0.05, "exported the training data")
    params = ctx.params
    cfg = _load_config(params.config, task)
    data = {
        "data.config.path": str(export_dir),
        "data.config.task": task,
        "data.config.classes": info["classes"],
        "data.config.inputs": info["inputs"],
    }
    if info["label"] is not None:
        data["data.config.label"] = info["label"]
    for key, value in {**data, **params.overrides}.items():
        set_dotted(cfg, key, value)
    run_dir = project_dir / "runs" / f"job-{ctx.job_id}"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):  # the config parser reports errors on stderr
            result, resumed = _train(ctx, cfg, run_dir)
    except (JobCancelled, JobInterrupted):
        raise
    except SystemExit as exc:  # a rejected config (jsonargparse exits): never end the worker
        ctx.check()
        detail = err.getvalue().strip().splitlines()[-3:]
        raise PermanentJobError(
            f"the fine-tuning config was rejected (exit {exc.code}): {' '.join(detail)}"
        ) from None
    finally:
        if err.getvalue():
            ctx.log(err.getvalue()[-4000:], "warning")
    ctx.check()
    ctx.log("metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items())))
    with ctx.session_factory() as s:
        entry = s.query(ModelEntry).filter(ModelEntry.job_id == ctx.job_id).one_or_none()
        if entry is None:
            entry = register_model(
                s,
                name=params.name or f"{pname}-job{ctx.job_id}",
                project_id=ctx.project_id,
                task_type=task,
                run_dir=str(result.run_dir),
                model_dir=str(result.model_dir),
                config=json.loads(json.dumps(cfg, default=str)),
                metrics=result.metrics,
                artifacts={
                    "checkpoint": str(result.checkpoint) if result.checkpoint else None,
                    "best_checkpoint": (
                        str(result.best_checkpoint) if result.best_checkpoint else None
                    ),
                    "metrics": str(result.run_dir / "metrics.json"),
                    "config": str(result.run_dir / "config.yaml"),
                    "export": str(export_dir),
                },
                job_id=ctx.job_id,
                created_by=ctx.created_by,
            )
        model_id = entry.id
    return {
        "model_id": model_id,
        "run_dir": str(result.run_dir),
        "model_dir": str(result.model_dir),
        "metrics": result.metrics,
        "resumed_from": resumed.name if resumed else None,
        "artifacts": {
            "metrics.json": str(result.run_dir / "metrics.json"),
            "config.yaml": str(result.run_dir / "config.yaml"),
            "task.json": str(Path(result.model_dir) / "task.json"),
            "model.safetensors": str(Path(result.model_dir) / "model.safetensors"),
        },
    }
