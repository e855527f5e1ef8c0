"""Model predictions in the labelling loop: finding an inference job's outputs, how to show
them, and which labels the model disagrees with (pre-labels: ``labeling.prelabels``).

An ``inference`` job (``api/jobs/handlers/inference.py``) writes per window
``windows/NAME/prediction.tif`` (a COG: a class map with its legend in the ``CLASSES`` tag, or
float values) and ``prediction.geojson`` (class polygons or detections), listed in its result's
``artifacts`` as ``NAME.tif`` / ``NAME.geojson``; an AOI run adds ``mosaic.tif``. Here:

- :func:`window_prediction` / :func:`mosaic_prediction`: a job's COG for a window / its mosaic
  (only files inside the data dir, and only windows of the dataset the job predicted);
- :func:`prediction_style`: how a COG is shown: ``classes`` with a legend (the COG's, else the
  project's classes) or ``values`` through a ramp over the range of its values;
- :func:`window_layers` / :func:`project_layers`: what the map lists;
- :func:`likely_wrong`: accepted and submitted windows ranked by how much the model disagrees
  with their labels (annotations rasterised on the window grid by the fine-tuning export's
  rasteriser, ``earthplat.data.labels.rasterize_features``).

Only numpy, rasterio and shapely run here (no torch): safe inside request handlers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from earthplat.tasks import TASKS
from labeling.jobs import Job
from labeling.models import Annotation, DatasetRecord, ModelEntry, Project, WindowRecord
from labeling.services.errors import InvalidInputError, NotFoundError

JOB_KIND = "inference"
RAMP = "viridis"
"""The colour ramp of value predictions (``labeling.tiles.RAMPS``)."""
REVIEWED = ("accepted", "submitted")
"""Window statuses whose labels :func:`likely_wrong` compares with the model."""


# --- finding a job's outputs --------------------------------------------------------------------
def inference_jobs(session: Session, *, project_id: int) -> list[Job]:
    """The project's succeeded inference jobs, newest first."""
    return list(
        session.scalars(
            select(Job)
            .where(Job.project_id == project_id, Job.kind == JOB_KIND, Job.status == "succeeded")
            .order_by(Job.created_at.desc(), Job.id.desc())
        )
    )


def get_inference_job(session: Session, *, project_id: int, job_id: int) -> Job:
    """A succeeded inference job of the project; 404 naming what it is otherwise."""
    job = session.get(Job, job_id)
    if job is None or job.project_id != project_id:
        raise NotFoundError(
            f"project {project_id} has no job {job_id}",
            fix=f"list its predictions: GET /api/v1/projects/{project_id}/predictions",
        )
    if job.kind != JOB_KIND:
        raise NotFoundError(
            f"job {job_id} is a {job.kind} job, not an inference job",
            fix=f"list the project's predictions: GET /api/v1/projects/{project_id}/predictions",
        )
    if job.status != "succeeded":
        raise NotFoundError(
            f"inference job {job_id} is {job.status}; it has no predictions to show",
            fix=f"wait for it to succeed (GET /api/v1/jobs/{job_id}) or see its logs",
        )
    return job


def job_dataset(job: Job) -> str:
    """The name of the dataset the job predicted."""
    return (job.payload or {}).get("dataset") or "default"


def _inside(path: Any, data_dir: str | Path | None) -> Path | None:
    """``path`` as a file inside ``data_dir`` (relative paths are under it), else None."""
    if not path:
        return None
    p = Path(str(path))
    if data_dir is not None:
        root = Path(data_dir).expanduser().resolve()
        p = (root / p if not p.is_absolute() else p).resolve()
        if not p.is_relative_to(root):
            return None
    return p if p.is_file() else None


def job_window_file(
    job: Job, *, window: str, dataset: str, suffix: str = ".tif", data_dir: Path | None = None
) -> Path | None:
    """The job's output file ``NAME{suffix}`` for window ``window`` of ``dataset``, or None."""
    result = job.result or {}
    if job_dataset(job) != dataset or window not in (result.get("windows") or []):
        return None
    path = _inside((result.get("artifacts") or {}).get(f"{window}{suffix}"), data_dir)
    # a window's outputs live in windows/NAME/ (never the mosaic of a window named "mosaic")
    return path if path is not None and path.parent.name == window else None


def window_prediction(
    session: Session, *, job: Job, window: WindowRecord, data_dir: Path | None = None
) -> Path | None:
    """The job's prediction COG of ``window``, or None if it did not predict that window."""
    dataset = session.get(DatasetRecord, window.dataset_id)
    return job_window_file(job, window=window.name, dataset=dataset.name, data_dir=data_dir)


def require_window_prediction(
    session: Session, *, job: Job, window: WindowRecord, suffix: str = ".tif", data_dir=None
) -> Path:
    """The job's ``suffix`` output of ``window``; 404 with the fix when it has none."""
    dataset = session.get(DatasetRecord, window.dataset_id)
    path = job_window_file(
        job, window=window.name, dataset=dataset.name, suffix=suffix, data_dir=data_dir
    )
    if path is None:
        what = "prediction" if suffix == ".tif" else f"{suffix} prediction"
        raise NotFoundError(
            f"inference job {job.id} has no {what} of window {window.id} ({window.name})",
            fix=f"run inference over it: POST /api/v1/projects/{window.project_id}/predictions "
            f'with {{"model_id": ..., "window_ids": [{window.id}]}}; or use a job listed in '
            f"GET /api/v1/tiles/{window.id}",
        )
    return path


def mosaic_prediction(job: Job, *, data_dir: Path | None = None) -> Path | None:
    """The job's AOI mosaic COG, or None (a run over window ids writes none)."""
    path = _inside(((job.result or {}).get("artifacts") or {}).get("mosaic.tif"), data_dir)
    return path if path is not None and path.name == "mosaic.tif" else None


def job_model(session: Session, job: Job) -> tuple[int | None, str]:
    """(registered model id or None, a name for it) of the model the job ran."""
    result = job.result or {}
    model_id = result.get("model_id") or (job.payload or {}).get("model_id")
    entry = session.get(ModelEntry, model_id) if model_id else None
    if entry is not None:
        return entry.id, entry.name
    path = result.get("model") or (job.payload or {}).get("model_path")
    return None, Path(str(path)).name if path else f"job {job.id}"


def job_task(job: Job, project: Project) -> str:
    return (job.result or {}).get("task") or project.task_type


# --- how a prediction is shown ------------------------------------------------------------------
@lru_cache(maxsize=512)
def _cog_facts(path: str, mtime_ns: int) -> dict[str, Any]:
    """Tags, legend and value range of a COG (cached per file version)."""
    import rasterio

    del mtime_ns  # part of the cache key only
    with rasterio.open(path) as src:
        tags = src.tags()
        facts: dict[str, Any] = {
            "count": src.count,
            "task": tags.get("TASK"),
            "classes": json.loads(tags["CLASSES"]) if tags.get("CLASSES") else None,
            "model": json.loads(tags["MODEL"]) if tags.get("MODEL") else {},
            "range": None,
        }
        band = src.tags(1)
        if "STATISTICS_MINIMUM" in band and "STATISTICS_MAXIMUM" in band:
            facts["range"] = [float(band["STATISTICS_MINIMUM"]), float(band["STATISTICS_MAXIMUM"])]
        elif np.dtype(src.dtypes[0]).kind == "f":
            # from the overviews when it is large: min and max of at most ~1024 x 1024 pixels
            step = max(1, int(np.ceil(max(src.width, src.height) / 1024)))
            shape = (max(1, src.height // step), max(1, src.width // step))
            data = src.read(1, out_shape=shape, masked=True).astype(np.float64)
            values = data.compressed()
            values = values[np.isfinite(values)]
            if values.size:
                facts["range"] = [float(values.min()), float(values.max())]
    return facts


def cog_facts(path: str | Path) -> dict[str, Any]:
    """``{count, task, classes (the legend tag or None), model (spec), range}`` of a COG."""
    p = Path(path)
    return _cog_facts(str(p), p.stat().st_mtime_ns)


def _legend(classes: Iterable[dict]) -> list[dict]:
    from labeling.tiles import DEFAULT_PALETTE

    return [
        {
            "value": int(c["value"]),
            "label": str(c.get("label", c["value"])),
            "color": c.get("color") or DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)],
        }
        for i, c in enumerate(classes)
    ]


def prediction_style(path: str | Path, *, task: str, project_classes: list[dict]) -> dict:
    """``{kind, legend, range, ramp}`` of a prediction COG: a class map (``kind="classes"``:
    the COG's legend, else the project's classes) or values (``kind="values"``: their range,
    shown through ``ramp``)."""
    facts = cog_facts(path)
    kind = TASKS[task].output if task in TASKS else None
    if facts["classes"] is not None or kind == "classes":
        legend = _legend(facts["classes"] or project_classes)
        return {"kind": "classes", "legend": legend, "range": None, "ramp": None}
    return {"kind": "values", "legend": [], "range": facts["range"], "ramp": RAMP}


def _layer(session: Session, job: Job, project: Project, cog: Path) -> dict:
    model_id, model_name = job_model(session, job)
    task = job_task(job, project)
    return {
        "job_id": job.id,
        "model_id": model_id,
        "model_name": model_name,
        "task_type": task,
        **prediction_style(cog, task=task, project_classes=project.classes),
        "created_at": job.created_at,
    }


def window_layers(
    session: Session, *, window: WindowRecord, data_dir: Path | None = None
) -> list[dict]:
    """One entry per succeeded inference job of the window's project that wrote a COG for the
    window, newest first: job, model, task, kind, legend, range, ramp, created_at."""
    project = session.get(Project, window.project_id)
    out = []
    for job in inference_jobs(session, project_id=window.project_id):
        cog = window_prediction(session, job=job, window=window, data_dir=data_dir)
        if cog is not None:
            out.append(_layer(session, job, project, cog))
    return out


def project_layers(
    session: Session, *, project: Project, data_dir: Path | None = None, sample: int = 16
) -> list[dict]:
    """The project's succeeded inference jobs, newest first, with ``windows`` (how many they
    predicted), ``bounds`` (WGS84, of those windows) and ``mosaic`` (the mosaic COG or None).
    Legend and range come from the mosaic, else from up to ``sample`` windows' COGs."""
    out = []
    for job in inference_jobs(session, project_id=project.id):
        names = list((job.result or {}).get("windows") or [])
        rows = _job_windows(session, job, names)
        mosaic = mosaic_prediction(job, data_dir=data_dir)
        cogs = [mosaic] if mosaic is not None else []
        for row in rows:
            if len(cogs) >= sample:
                break
            cog = window_prediction(session, job=job, window=row, data_dir=data_dir)
            if cog is not None:
                cogs.append(cog)
        if not cogs:
            continue  # e.g. a detection job: vectors only, nothing to tile
        layer = _layer(session, job, project, cogs[0])
        if layer["kind"] == "values" and mosaic is None:
            ranges = [r for c in cogs if (r := cog_facts(c)["range"]) is not None]
            if ranges:
                layer["range"] = [min(r[0] for r in ranges), max(r[1] for r in ranges)]
        layer.update(windows=len(names), bounds=_bounds([r.geometry for r in rows]), mosaic=mosaic)
        out.append(layer)
    return out


def _job_windows(session: Session, job: Job, names: list[str]) -> list[WindowRecord]:
    dataset = session.scalar(
        select(DatasetRecord).where(
            DatasetRecord.project_id == job.project_id, DatasetRecord.name == job_dataset(job)
        )
    )
    if dataset is None or not names:
        return []
    rows: list[WindowRecord] = []
    for i in range(0, len(names), 500):  # bounded IN lists
        rows += session.scalars(
            select(WindowRecord)
            .where(WindowRecord.dataset_id == dataset.id, WindowRecord.name.in_(names[i : i + 500]))
            .order_by(WindowRecord.id)
        )
    return rows


def _bounds(geometries: list[dict]) -> list[float] | None:
    from shapely.geometry import shape

    if not geometries:
        return None
    b = np.array([shape(g).bounds for g in geometries])
    return [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())]


def read_on_window(path: Path, window: WindowRecord, bands: list[int] | None = None):
    """Bands of a prediction COG on the window's grid: ([k, H, W] float64 NaN = nodata)."""
    import rasterio
    from rasterio.enums import Resampling

    from earthplat.data.warp import read_warped

    with rasterio.open(path) as src:
        indexes = bands or list(range(1, src.count + 1))
        values, valid = read_warped(src, window.to_window(), indexes, resampling=Resampling.nearest)
    return np.where(valid, values, np.nan)


def majority_class(values: np.ndarray) -> int | None:
    """The most frequent class of a class raster (NaN = nodata), or None when all is nodata."""
    v = values[np.isfinite(values)].astype(np.int64)
    if v.size == 0:
        return None
    codes, counts = np.unique(v, return_counts=True)
    return int(codes[np.argmax(counts)])


# --- labels the model disagrees with ------------------------------------------------------------
def _covers(session: Session, job: Job, windows: list[WindowRecord], data_dir) -> bool:
    return any(window_prediction(session, job=job, window=w, data_dir=data_dir) for w in windows)


def disagreement(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, int]:
    """(share of labelled pixels whose predicted class differs, labelled pixels counted):
    ``labels`` [H, W] int (``CLASS_NODATA`` = unlabelled), ``predicted`` [H, W] float (NaN =
    nodata); pixels the model did not predict are not counted."""
    from earthplat.data.labels import CLASS_NODATA

    counted = (labels != CLASS_NODATA) & np.isfinite(predicted)
    n = int(counted.sum())
    if n == 0:
        return 0.0, 0
    return float((predicted[counted].astype(np.int64) != labels[counted]).mean()), n


def likely_wrong(
    session: Session,
    *,
    project: Project,
    job_id: int | None = None,
    limit: int = 100,
    data_dir: Path | None = None,
) -> dict[str, Any]:
    """Accepted and submitted windows the job predicted, ranked by the model's disagreement with
    their labels, highest first (see the module docstring); windows without labelled pixels
    under the prediction are left out. Default job: the newest succeeded inference job that
    predicted one of those windows (404 naming the fix when there is none)."""
    from earthplat.data.labels import rasterize_features
    from labeling.export import annotation_feature

    task = project.task_type
    if task not in ("segmentation", "classification"):
        raise InvalidInputError(
            f"project {project.name!r} is a {task} project; likely-wrong labels compare class "
            "maps (segmentation) or window classes (classification)"
        )
    windows = list(
        session.scalars(
            select(WindowRecord)
            .where(WindowRecord.project_id == project.id, WindowRecord.status.in_(REVIEWED))
            .order_by(WindowRecord.id)
        )
    )
    if job_id is not None:
        job = get_inference_job(session, project_id=project.id, job_id=job_id)
    else:
        job = next(
            (
                j
                for j in inference_jobs(session, project_id=project.id)
                if _covers(session, j, windows, data_dir)
            ),
            None,
        )
        if job is None:
            raise NotFoundError(
                f"no succeeded inference job of project {project.id} predicted its accepted "
                "windows",
                fix=f"run inference over the accepted windows: POST /api/v1/projects/"
                f'{project.id}/predictions with {{"model_id": ..., "window_ids": [the accepted '
                "windows' ids]}",
            )
    if job_task(job, project) != task:
        raise InvalidInputError(
            f"inference job {job.id} ran a {job_task(job, project)} model; project "
            f"{project.name!r} labels {task}"
        )
    ranked = []
    for w in windows:
        cog = window_prediction(session, job=job, window=w, data_dir=data_dir)
        if cog is None:
            continue
        rows = list(
            session.scalars(
                select(Annotation)
                .where(Annotation.window_id == w.id, Annotation.class_value.is_not(None))
                .order_by(Annotation.id)
            )
        )
        if not rows:
            continue
        grid = w.to_window()
        labels, _ = rasterize_features(grid, [annotation_feature(a) for a in rows])
        predicted = read_on_window(cog, w, [1])[0]
        share, n = disagreement(labels.astype(np.int64), predicted)
        if n == 0:
            continue
        entry = {"window_id": w.id, "name": w.name, "status": w.status, "labelled_pixels": n}
        if task == "classification":
            label_class = int(rows[-1].class_value)  # the latest, as the export takes it
            predicted_class = majority_class(predicted)
            share = float(predicted_class != label_class)
            entry |= {"predicted_class": predicted_class, "label_class": label_class}
        ranked.append(entry | {"disagreement": share})
    ranked.sort(key=lambda e: (-e["disagreement"], -e["labelled_pixels"], e["window_id"]))
    model_id, _ = job_model(session, job)
    return {"job_id": job.id, "model_id": model_id, "windows": ranked[:limit]}
