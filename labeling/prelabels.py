"""Pre-labels: a model's predicted classes of a window as annotations a labeller corrects.

By the project's task (the job must have run a model of the same task):

- segmentation: polygons vectorised from the window's class raster (``rasterio.features``;
  one per connected patch, in WGS84, simplified only as far as the annotation limits need;
  slivers under ``MIN_PIXELS`` merged into their neighbours or dropped);
- detection: the predicted boxes and points of the window's prediction GeoJSON;
- classification: the window's footprint with the predicted (majority) class; multilabel: the
  footprint once per class whose mean probability reaches ``MULTILABEL_THRESHOLD``.

Nodata is never labelled, nor a class the project marks as background (``"background": true``
in its class schema); without such a mark every class is. Regression and embedding projects
predict values: no pre-labels. Annotations are made through
``labeling.services.annotations.create_annotation`` (its checks, the window's claim) with
``origin="model"`` and the job's ``model_id``; pressing again replaces the window's unedited
model-made annotations, while human and edited ones stay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete
from sqlalchemy.orm import Session

from labeling.jobs import Job
from labeling.models import Annotation, Project, WindowRecord
from labeling.predictions import (
    cog_facts,
    get_inference_job,
    job_model,
    job_task,
    majority_class,
    read_on_window,
    require_window_prediction,
)
from labeling.services.errors import ConflictError, InvalidInputError, TooLargeError

PRELABEL_TASKS = ("segmentation", "classification", "detection", "multilabel")
"""Project tasks whose predictions can become annotations (classes, not values)."""
MIN_PIXELS = 4
"""Connected patches of a predicted class smaller than this (pixels) are slivers: merged into
their neighbours (``rasterio.features.sieve``) before vectorising, dropped if left alone."""
MULTILABEL_THRESHOLD = 0.5
"""A multilabel class is pre-labelled when its mean predicted probability reaches this."""


@dataclass(frozen=True)
class Prelabel:
    """A geometry (WGS84 GeoJSON) with the class a model predicted for it."""

    geometry: dict[str, Any]
    class_value: int


def background_values(classes: list[dict]) -> set[int]:
    """Class values the project marks as background (``"background": true`` in its class
    schema): pre-labels skip them. Without such a mark every class is pre-labelled."""
    return {int(c["value"]) for c in classes if c.get("background")}


def _wgs84(geom: Any, crs: Any) -> Any:
    """A shapely geometry in ``crs`` -> WGS84 (exteriors counter-clockwise, coordinates to
    1e-8 degrees, about a millimetre), valid."""
    import shapely
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape
    from shapely.geometry.polygon import orient

    out = shape(transform_geom(crs, "EPSG:4326", mapping(geom)))
    out = shapely.set_precision(out, 1e-8)
    if not out.is_valid:
        out = out.buffer(0)
    if out.geom_type == "Polygon":
        out = orient(out, 1.0)
    elif out.geom_type == "MultiPolygon":
        out = shapely.MultiPolygon([orient(p, 1.0) for p in out.geoms])
    return out


def fit_limits(geom: Any, *, crs: Any, resolution: float, limits: Any) -> dict | None:
    """``geom`` (in ``crs``) as WGS84 GeoJSON within the annotation ``limits`` (vertices and
    bytes): exact pixel edges when they fit, else simplified with a tolerance doubling from half
    a pixel. None when even a coarse outline does not fit (or it vanishes)."""
    import shapely
    from shapely.geometry import mapping

    tolerance = 0.0
    for _ in range(16):
        g = geom.simplify(tolerance, preserve_topology=True) if tolerance else geom
        out = _wgs84(g, crs)
        if out.is_empty or out.area == 0:
            return None
        gj = json.loads(json.dumps(mapping(out)))
        size = len(json.dumps(gj, separators=(",", ":")))
        if shapely.get_num_coordinates(out) <= limits.max_vertices and size <= limits.max_bytes:
            return gj
        tolerance = resolution / 2 if tolerance == 0 else tolerance * 2
    return None


def vectorise_classes(
    values: np.ndarray,
    *,
    transform: Any,
    crs: Any,
    resolution: float,
    classes: list[dict],
    limits: Any,
    min_pixels: int = MIN_PIXELS,
) -> tuple[list[Prelabel], int]:
    """Polygons of each predicted class of a class raster ([H, W], NaN = nodata) on a grid
    (``transform`` in ``crs``): one per connected patch, in WGS84, within ``limits``. Patches
    under ``min_pixels`` are merged into their neighbours first (sieve) and dropped when left
    alone; nodata, background classes and classes outside ``classes`` are skipped. Returns
    (pre-labels, patches dropped)."""
    from rasterio.features import shapes, sieve
    from shapely.geometry import shape

    valid = np.isfinite(values)
    codes = np.where(valid, values, -1).astype(np.int32)
    if min_pixels > 1 and valid.any():
        codes = sieve(codes, size=min_pixels, mask=valid.astype(np.uint8), connectivity=4)
    wanted = {int(c["value"]) for c in classes} - background_values(classes)
    out, dropped = [], 0
    min_area = min_pixels * abs(transform.a * transform.e)
    for geom, value in shapes(codes, mask=valid, transform=transform, connectivity=4):
        value = int(value)
        if value not in wanted:
            continue
        poly = shape(geom)
        if poly.area < min_area:
            dropped += 1
            continue
        gj = fit_limits(poly, crs=crs, resolution=resolution, limits=limits)
        if gj is None:
            dropped += 1
            continue
        out.append(Prelabel(gj, value))
    return out, dropped


def check_prelabel_task(project: Project) -> None:
    """422 for a project whose predictions are values (regression, embeddings)."""
    if project.task_type not in PRELABEL_TASKS:
        raise InvalidInputError(
            f"project {project.name!r} is a {project.task_type} project: its predictions are "
            "values, not classes, so they cannot become class annotations",
            fix="show the predictions as a layer instead (GET /api/v1/tiles/WINDOW_ID lists "
            f"them); pre-labels are for {', '.join(PRELABEL_TASKS)} projects",
        )


def prelabel_candidates(
    session: Session,
    *,
    project: Project,
    window: WindowRecord,
    job: Job,
    limits: Any,
    data_dir: Path | None = None,
    min_score: float | None = None,
) -> tuple[list[Prelabel], int]:
    """What the job predicted for ``window``, as (pre-labels, predictions dropped): see the
    module docstring for each task. 422 for a project whose predictions are values."""
    task = project.task_type
    check_prelabel_task(project)
    predicted = job_task(job, project)
    if predicted != task:
        raise InvalidInputError(
            f"inference job {job.id} ran a {predicted} model; project {project.name!r} labels "
            f"{task}",
            fix=f"use an inference job of a {task} model of this project",
        )
    classes = list(project.classes or [])
    wanted = {int(c["value"]) for c in classes} - background_values(classes)
    if task == "detection":
        path = require_window_prediction(
            session, job=job, window=window, suffix=".geojson", data_dir=data_dir
        )
        return _detections(path, window, wanted, limits, min_score)
    cog = require_window_prediction(session, job=job, window=window, data_dir=data_dir)
    if task == "segmentation":
        values = read_on_window(cog, window, [1])[0]
        return vectorise_classes(
            values,
            transform=window.to_window().transform,
            crs=window.crs,
            resolution=window.resolution,
            classes=classes,
            limits=limits,
        )
    footprint = json.loads(json.dumps(window.geometry))
    if task == "classification":
        value = majority_class(read_on_window(cog, window, [1])[0])
        return ([Prelabel(footprint, value)] if value in wanted else []), 0
    # multilabel: band i is the probability of the model's class i
    probs = read_on_window(cog, window)
    model_classes = cog_facts(cog)["model"].get("classes") or classes
    out = []
    for i, c in enumerate(model_classes[: probs.shape[0]]):
        band = probs[i][np.isfinite(probs[i])]
        if band.size and band.mean() >= MULTILABEL_THRESHOLD and int(c["value"]) in wanted:
            out.append(Prelabel(footprint, int(c["value"])))
    return out, 0


def _detections(
    path: Path, window: WindowRecord, wanted: set[int], limits: Any, min_score: float | None
) -> tuple[list[Prelabel], int]:
    from shapely.geometry import shape

    from labeling.services.annotations import check_geometry

    footprint = shape(window.geometry)
    out, dropped = [], 0
    for f in json.loads(path.read_text()).get("features", []):
        props = f.get("properties") or {}
        value = props.get("class_value")
        if value is None or int(value) not in wanted:
            continue
        if min_score is not None and float(props.get("score", 1.0)) < min_score:
            continue
        try:
            geom = check_geometry(f.get("geometry"), limits)
        except (InvalidInputError, TooLargeError):
            dropped += 1
            continue
        if not shape(geom).intersects(footprint):
            dropped += 1
            continue
        out.append(Prelabel(geom, int(value)))
    return out, dropped


def create_prelabels(
    session: Session,
    *,
    project: Project,
    window: WindowRecord,
    job_id: int,
    author_id: int,
    limits: Any,
    lock_minutes: float,
    data_dir: Path | None = None,
    min_score: float | None = None,
) -> dict[str, Any]:
    """Turn inference job ``job_id``'s prediction of ``window`` into annotations
    (``origin="model"``, ``model_id``: the job's model) through ``create_annotation`` and its
    checks.

    The project must label classes (422), the job be a succeeded inference job of the project
    that predicted the window (404), the window be editable (409) and free or claimed by the
    author (claiming it; 423 if someone else holds it), all checked before anything changes.
    Every candidate is checked as ``create_annotation`` will check it first (one failing is
    dropped), so the replacement does not stop half way. Earlier model-made, unedited
    annotations of the window (from any job) are deleted; human and edited ones stay. Returns
    ``{created: [Annotation], replaced: n, dropped: n}``.

    ``create_annotation`` commits each annotation, so a crash mid-way leaves some of them (never
    a duplicate: the next press replaces them)."""
    from labeling.services import claims
    from labeling.services.annotations import (
        EDITABLE,
        check_geometry,
        check_inside,
        check_label,
        create_annotation,
    )

    check_prelabel_task(project)
    job = get_inference_job(session, project_id=window.project_id, job_id=job_id)
    if window.status not in EDITABLE:
        raise ConflictError(
            f"window {window.id} is {window.status}; its annotations cannot change",
            fix="a reviewer must reject it first" if window.status == "submitted" else None,
        )
    candidates, dropped = prelabel_candidates(
        session,
        project=project,
        window=window,
        job=job,
        limits=limits,
        data_dir=data_dir,
        min_score=min_score,
    )
    checked = []
    for p in candidates:  # the checks create_annotation makes, before anything is deleted
        try:
            geometry = check_geometry(p.geometry, limits)
            check_label(project, class_value=p.class_value, value=None)
            check_inside(geometry, window)
        except (InvalidInputError, TooLargeError):
            dropped += 1
            continue
        checked.append(Prelabel(geometry, p.class_value))
    model_id, _ = job_model(session, job)
    claims.require_claim(
        session, window=window, user_id=author_id, minutes=lock_minutes, action="pre-label"
    )
    replaced = session.execute(
        delete(Annotation)
        .where(
            Annotation.window_id == window.id,
            Annotation.origin == "model",
            Annotation.edited.is_(False),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()  # the claim and the replacement, even when nothing is predicted
    created = [
        create_annotation(
            session,
            project=project,
            window_id=window.id,
            author_id=author_id,
            geometry=p.geometry,
            class_value=p.class_value,
            properties={"job_id": job.id},
            limits=limits,
            lock_minutes=lock_minutes,
            origin="model",
            model_id=model_id,
        )
        for p in checked
    ]
    return {"created": created, "replaced": int(replaced or 0), "dropped": dropped}
