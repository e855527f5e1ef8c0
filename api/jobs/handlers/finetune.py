"""``finetune``: export the project's accepted annotations, fine-tune, register the model.

Payload::

    {"config": "sen1floods11_nano_upernet_s2" | {...a full config dict...},
         # a shipped config (earthplat/configs/finetune/NAME.yaml); default: one for the task
     "overrides": {"trainer.max_steps": 100, ...},   # dotted keys, as run_finetune takes them
         # ("trainer.checkpoint.monitor": "val/miou" exports the best validation checkpoint)
     "statuses": ["accepted"],                       # windows whose annotations are used
     "dataset": "default", "layers": null,           # imagery layers to train on (default all)
     "encoder": "preset:nano" | "model:ID" | "olmoearth:NAME",  # what the encoder starts from
         # (default: the config's backbone); model:ID loads that registered model's encoder,
         # its parent; olmoearth:NAME the published checkpoint DATA_DIR/encoders/NAME (backbone
         # olmoearth; "model.backbone.extra_inputs": ["sentinel2_l1c"] in overrides accepts L1C
         # imagery for its L2A projections, recorded in the model's config)
     "name": "model name"}                           # default: PROJECT-jobID

Steps (each one resumable, so a reclaimed job continues instead of starting over):

1. export (``labeling.export.export_dataset``) into ``projects/ID/exports/job-ID``, skipped
   when an earlier attempt finished it (``export.json`` present);
2. ``earthplat.train.finetune`` with ``run_dir = projects/ID/runs/job-ID``: a restarted job
   resumes from the run's last checkpoint; a callback reports progress, stops at the next
   step on cancel or shutdown (saving ``last.ckpt`` first on shutdown);
3. the model registry entry (``labeling.services.registry.register_model``), once per job.

Besides the run's metrics, the job measures and records (in its result and, under
``platform``, in the registered model's config): ``throughput`` (training samples/s of the
steady loop, ``api.jobs.throughput``, with the batch size and the encoder), ``encoder`` (the
encoder id it started from), ``trained_on`` (windows, statuses, layers, dataset) and
``test_windows`` (ids of the windows of the test split, which ``/models/compare`` reads).
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

    if isinstance(spec, dict):  # a registered model's config may come back: drop its records
        return {k: v for k, v in spec.items() if k != "platform"}
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

    from api.jobs.throughput import ThroughputMeter

    class JobCallback(L.Callback):
        """Progress into the job row; stop at a step boundary on cancel or shutdown; measure
        the training throughput and note the data module's splits."""

        def __init__(self) -> None:
            self.meter = ThroughputMeter()
            self.splits: dict[str, list[str]] = {}
            self.device: str | None = None

        def on_train_start(self, trainer, pl_module) -> None:
            if trainer.ckpt_path:  # run_finetune decided to resume the run
                ctx.log(f"resuming from {Path(trainer.ckpt_path).name}")
            splits = getattr(trainer.datamodule, "splits", None) or {}
            self.splits = {k: [w.name for w in ws] for k, ws in splits.items()}
            self.device = pl_module.device.type
            self.meter.start()

        def on_validation_start(self, trainer, pl_module) -> None:
            self.meter.pause()

        def on_validation_end(self, trainer, pl_module) -> None:
            self.meter.resume()

        def on_train_end(self, trainer, pl_module) -> None:
            self.meter.stop()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            try:
                self.meter.batch_end(len(batch))
            except TypeError:  # a batch without a length: its steps still pass
                self.meter.batch_end(0)
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
    (a restarted job continues from the run dir's last checkpoint). Returns the result and
    the callback (its throughput meter and the splits)."""
    from earthplat.train.finetune import run_finetune, set_dotted

    set_dotted(cfg, "trainer.enable_progress_bar", False)
    max_steps = int((cfg.get("trainer") or {}).get("max_steps") or -1)
    callback = _callback(ctx, run_dir, max_steps)
    result = run_finetune(cfg, run_dir=run_dir, callbacks=[callback])
    return result, callback


def _dotted(cfg: dict, key: str) -> Any:
    """``cfg[a][b]...`` for ``key = "a.b..."``, through ``init_args`` levels (``None`` if
    absent): the reading side of ``set_dotted``."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict):
            return None
        node = node[part] if part in node else (node.get("init_args") or {}).get(part)
    return node


def _parent(ctx: JobContext, encoder: str | None) -> tuple[int | None, str | None]:
    """``(model id, model dir)`` of a ``model:ID`` encoder, else ``(None, None)``."""
    from labeling.models import ModelEntry
    from labeling.services.encoders import model_encoder_config, parse_encoder

    if encoder is None:
        return None, None
    kind, value = parse_encoder(encoder)
    if kind != "model":
        return None, None
    with ctx.session_factory() as s:
        entry = s.get(ModelEntry, value)
        if entry is None or model_encoder_config(entry) is None:
            raise PermanentJobError(f"model {value} (encoder {encoder}) no longer holds an encoder")
        return entry.id, entry.model_dir


def _published(ctx: JobContext, encoder: str | None) -> str | None:
    """The checkpoint directory of an ``olmoearth:NAME`` encoder, else ``None``; a name that is
    gone or no longer loads fails the job, naming why."""
    from labeling.services.encoders import encoder_roots, parse_encoder, published_checkpoint
    from labeling.services.errors import InvalidInputError

    if encoder is None:
        return None
    kind, value = parse_encoder(encoder)
    if kind != "olmoearth":
        return None
    extra = getattr(ctx.settings, "encoder_roots", None) if ctx.settings is not None else None
    try:
        return str(published_checkpoint(str(value), encoder_roots(ctx.data_dir, extra)))
    except InvalidInputError as e:
        raise PermanentJobError(f"{e} ({e.fix})" if e.fix else str(e)) from None


def _window_ids(ctx: JobContext, names: list[str]) -> list[int]:
    """Ids of the dataset's windows named ``names``."""
    from sqlalchemy import select

    from labeling.models import DatasetRecord, WindowRecord

    if not names:
        return []
    with ctx.session_factory() as s:
        query = (
            select(WindowRecord.id)
            .join(DatasetRecord, DatasetRecord.id == WindowRecord.dataset_id)
            .where(
                WindowRecord.project_id == ctx.project_id,
                DatasetRecord.name == ctx.params.dataset,
                WindowRecord.name.in_(names),
            )
        )
        return sorted(s.scalars(query))


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
    parent_id, parent_dir = _parent(ctx, params.encoder)
    if params.encoder:
        from labeling.services.encoders import apply_encoder

        checkpoint = _published(ctx, params.encoder)
        apply_encoder(cfg, params.encoder, model_dir=parent_dir, checkpoint=checkpoint)
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
            result, callback = _train(ctx, cfg, run_dir)
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
    from labeling.services.encoders import encoder_of

    encoder = encoder_of(cfg, parent_id=parent_id)
    batch_size = _dotted(cfg, "data.config.batch_size")
    throughput = callback.meter.result(
        encoder=encoder, batch_size=batch_size, device=callback.device
    )
    if throughput["samples_per_s"]:
        ctx.log(
            f"throughput: {throughput['samples_per_s']:.2f} samples/s "
            f"({throughput['samples']} samples in {throughput['seconds']:.2f} s, {encoder})"
        )
    records = {
        "encoder": encoder,
        "throughput": throughput,
        "trained_on": {
            "windows": info.get("windows"),
            "statuses": list(params.statuses),
            "layers": list(info.get("inputs") or {}),
            "dataset": params.dataset,
        },
        "test_windows": (
            _window_ids(ctx, callback.splits["test"]) if "test" in callback.splits else None
        ),
    }
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
                config=json.loads(json.dumps({**cfg, "platform": records}, default=str)),
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
                parent_id=parent_id,
                job_id=ctx.job_id,
                created_by=ctx.created_by,
            )
        model_id = entry.id
    return {
        "model_id": model_id,
        "run_dir": str(result.run_dir),
        "model_dir": str(result.model_dir),
        "metrics": result.metrics,
        "resumed_from": result.resumed_from.name if result.resumed_from else None,
        "encoder": encoder,
        "parent_id": parent_id,
        "throughput": throughput,
        "artifacts": {
            "metrics.json": str(result.run_dir / "metrics.json"),
            "config.yaml": str(result.run_dir / "config.yaml"),
            "task.json": str(Path(result.model_dir) / "task.json"),
            "model.safetensors": str(Path(result.model_dir) / "model.safetensors"),
        },
    }
