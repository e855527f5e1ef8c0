"""The model loop in the browser: prediction layers as tiles, pre-labels, likely-wrong labels.

- ``GET /tiles/{window_id}/predictions/{job_id}/{z}/{x}/{y}.png``: a window's prediction by an
  inference job (class colours of its legend, or values through a ramp over ``?lo=&hi=``,
  default the predicted range); ``GET /tiles/{window_id}`` lists the layers
  (``predictions``).
- ``GET /projects/{project_id}/predictions``: the project's succeeded inference jobs;
  ``.../predictions/{job_id}/mosaic/{z}/{x}/{y}.png``: tiles of an AOI run's mosaic.
- ``POST /windows/{window_id}/prelabels``: a job's prediction of the window as model-made
  annotations (needs ``label`` and the window's claim).
- ``GET /projects/{project_id}/likely-wrong``: reviewed windows ranked by the model's
  disagreement with their labels (needs ``review``).

Tiles outside a raster are transparent PNGs. They are cached, carry ETags and answer
``If-None-Match`` with 304 as the layer tiles do (``api.routes.tiles``); the listings' URLs hold
``?v=`` (a digest of the prediction file and its colours), which makes a tile cacheable for good.

The logic lives in ``labeling.predictions``; tile rendering in
``labeling.tiles.render_prediction_tile``, pre-labels in ``labeling.prelabels``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Query, Response

from api import auth
from api.deps import CurrentUser, PathId, SessionDep, SettingsDep, WindowLabel, WindowRead
from api.errors import InvalidInputError, NotFoundError
from api.routes.tiles import PNG, IfNoneMatch, TileCacheDep, Version
from api.schemas.predictions import (
    LikelyWrongPublic,
    PredictionLayerPublic,
    PrelabelCreate,
    PrelabelsPublic,
    ProjectPredictionPublic,
)
from labeling.models import Project

router = APIRouter(tags=["predictions"])
STYLE = ("kind", "legend", "range", "ramp")
"""The fields of ``labeling.predictions.prediction_style``: how a prediction is coloured."""


def prediction_version(cog: Path, style: dict) -> str:
    """A digest of a prediction file's identity and its colouring (``?v=`` of its tiles)."""
    from labeling.tile_cache import digest, file_identity

    return digest([file_identity(cog), {k: style[k] for k in STYLE}], 12)


def window_tiles_url(window_id: int, job_id: int, version: str | None = None) -> str:
    query = f"?v={version}" if version else ""
    return f"/api/v1/tiles/{window_id}/predictions/{job_id}/{{z}}/{{x}}/{{y}}.png{query}"


def mosaic_tiles_url(project_id: int, job_id: int, version: str | None = None) -> str:
    query = f"?v={version}" if version else ""
    return f"/api/v1/projects/{project_id}/predictions/{job_id}/mosaic/{{z}}/{{x}}/{{y}}.png{query}"


def prediction_layers(session, *, window, data_dir) -> list[PredictionLayerPublic]:
    """The window's predictions (``labeling.predictions.window_layers``) with versioned tile
    URLs."""
    from labeling.jobs import Job
    from labeling.predictions import window_layers, window_prediction

    out = []
    for p in window_layers(session, window=window, data_dir=data_dir):
        job = session.get(Job, p["job_id"])  # loaded by window_layers
        cog = window_prediction(session, job=job, window=window, data_dir=data_dir)
        version = prediction_version(cog, p)
        out.append(
            PredictionLayerPublic(
                **p, version=version, tiles=window_tiles_url(window.id, job.id, version)
            )
        )
    return out


def _check_tile(z: int, x: int, y: int) -> None:
    if not (0 <= z <= 24 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInputError(f"tile {z}/{x}/{y} does not exist", fix="0 <= x, y < 2**z")


def _png(cog: Path, *, job, project: Project, z, x, y, lo, hi, v, if_none_match, cache):
    from api.routes.tiles import TILE_SIZE, png_response
    from labeling.predictions import job_task, prediction_style
    from labeling.tile_cache import cache_key, file_identity
    from labeling.tiles import render_prediction_tile

    style = prediction_style(cog, task=job_task(job, project), project_classes=project.classes)
    value_range = None
    if style["kind"] == "values":
        default = style["range"] or [0.0, 1.0]
        value_range = (default[0] if lo is None else lo, default[1] if hi is None else hi)
        if not value_range[0] < value_range[1]:
            raise InvalidInputError(
                f"the colour range lo={value_range[0]} hi={value_range[1]} is empty",
                fix="send lo < hi (or leave them out for the predicted range)",
            )
    key = cache_key(
        "prediction",
        [file_identity(cog)],
        style={k: style[k] for k in STYLE},
        value_range=value_range,
        z=z,
        x=x,
        y=y,
        size=TILE_SIZE,
    )
    return png_response(
        cache,
        key=key,
        fresh=v == prediction_version(cog, style),
        if_none_match=if_none_match,
        render=lambda: render_prediction_tile(
            cog,
            z=z,
            x=x,
            y=y,
            kind=style["kind"],
            legend=style["legend"],
            value_range=value_range,
            ramp=style["ramp"] or "viridis",
            size=TILE_SIZE,
        ),
    )


Lo = Query(None, allow_inf_nan=False, description="Values: the value shown at the ramp's start")
Hi = Query(None, allow_inf_nan=False, description="Values: the value shown at the ramp's end")


@router.get(
    "/tiles/{window_id}/predictions/{job_id}/{z}/{x}/{y}.png",
    response_class=Response,
    responses=PNG,
)
def read_prediction_tile(
    row: WindowRead,
    job_id: PathId,
    z: int,
    x: int,
    y: int,
    session: SessionDep,
    settings: SettingsDep,
    cache: TileCacheDep,
    if_none_match: IfNoneMatch = None,
    lo: float | None = Lo,
    hi: float | None = Hi,
    v: str | None = Version,
) -> Response:
    """Tile ``z/x/y`` of the window's prediction by inference job ``job_id``."""
    from labeling.predictions import get_inference_job, require_window_prediction

    _check_tile(z, x, y)
    job = get_inference_job(session, project_id=row.project_id, job_id=job_id)
    cog = require_window_prediction(session, job=job, window=row, data_dir=settings.data_dir)
    project = session.get(Project, row.project_id)
    return _png(
        cog,
        job=job,
        project=project,
        z=z,
        x=x,
        y=y,
        lo=lo,
        hi=hi,
        v=v,
        if_none_match=if_none_match,
        cache=cache,
    )


@router.get("/projects/{project_id}/predictions", response_model=list[ProjectPredictionPublic])
def list_predictions(
    project_id: PathId, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> list[ProjectPredictionPublic]:
    """The project's succeeded inference jobs that wrote rasters, newest first."""
    from labeling.predictions import project_layers

    auth.require(session, user=user, project_id=project_id, permission="read")
    project = session.get(Project, project_id)
    out = []
    for layer in project_layers(session, project=project, data_dir=settings.data_dir):
        mosaic = None
        if layer["mosaic"] is not None:  # the mosaic COG, which the layer's style is read from
            version = prediction_version(layer["mosaic"], layer)
            mosaic = mosaic_tiles_url(project_id, layer["job_id"], version)
        out.append(
            ProjectPredictionPublic(
                **{k: v for k, v in layer.items() if k != "mosaic"}, mosaic_tiles=mosaic
            )
        )
    return out


@router.get(
    "/projects/{project_id}/predictions/{job_id}/mosaic/{z}/{x}/{y}.png",
    response_class=Response,
    responses=PNG,
)
def read_mosaic_tile(
    project_id: PathId,
    job_id: PathId,
    z: int,
    x: int,
    y: int,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    cache: TileCacheDep,
    if_none_match: IfNoneMatch = None,
    lo: float | None = Lo,
    hi: float | None = Hi,
    v: str | None = Version,
) -> Response:
    """Tile ``z/x/y`` of the AOI mosaic of inference job ``job_id``."""
    from labeling.predictions import get_inference_job, mosaic_prediction

    auth.require(session, user=user, project_id=project_id, permission="read")
    _check_tile(z, x, y)
    job = get_inference_job(session, project_id=project_id, job_id=job_id)
    cog = mosaic_prediction(job, data_dir=settings.data_dir)
    if cog is None:
        raise NotFoundError(
            f"inference job {job_id} wrote no mosaic (only a run over an AOI does)",
            fix=f"show its windows' tiles (GET /api/v1/tiles/WINDOW_ID), or run inference over "
            f'a bbox: POST /api/v1/projects/{project_id}/predictions with {{"bbox": [...]}}',
        )
    project = session.get(Project, project_id)
    return _png(
        cog,
        job=job,
        project=project,
        z=z,
        x=x,
        y=y,
        lo=lo,
        hi=hi,
        v=v,
        if_none_match=if_none_match,
        cache=cache,
    )


@router.post("/windows/{window_id}/prelabels", response_model=PrelabelsPublic)
def create_prelabels(
    window: WindowLabel,
    body: PrelabelCreate,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
) -> dict:
    """The job's predicted classes of this window as annotations made by its model
    (``origin="model"``), replacing the window's earlier unedited pre-labels; human and edited
    annotations stay. Claims a free window; 423 while someone else holds it, 409 when the
    window is no longer editable, 422 for projects whose predictions are values."""
    from labeling import prelabels

    return prelabels.create_prelabels(
        session,
        project=session.get(Project, window.project_id),
        window=window,
        job_id=body.job_id,
        author_id=user.id,
        limits=settings.annotation_limits(),
        lock_minutes=settings.lock_minutes,
        data_dir=settings.data_dir,
        min_score=body.min_score,
    )


@router.get("/projects/{project_id}/likely-wrong", response_model=LikelyWrongPublic)
def read_likely_wrong(
    project_id: PathId,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    job_id: int | None = Query(None, ge=1, lt=2**31, description="Default: the newest covering"),
    limit: int = Query(100, ge=1, le=10_000),
) -> dict:
    """Accepted and submitted windows ranked by how much the model disagrees with their labels,
    highest first: where to look for labelling mistakes."""
    from labeling.predictions import likely_wrong

    auth.require(session, user=user, project_id=project_id, permission="review")
    project = session.get(Project, project_id)
    return likely_wrong(
        session, project=project, job_id=job_id, limit=limit, data_dir=settings.data_dir
    )
