"""Inference: predict one window now, or queue a job over an AOI / a list of windows.

Request handlers never import torch (ARCHITECTURE §1): "predict one window now" queues an
``inference`` job and waits (up to ``wait_s``) for a worker to finish it, answering 200 with
the finished job, or 202 with the job to follow when it takes longer. Either way the outputs
(COG, GeoJSON, STAC Item) are downloadable from ``/api/v1/jobs/ID/artifacts/NAME``.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from api import auth
from api.deps import CurrentUser, SessionDep, WindowManage
from api.errors import InvalidInputError, NotFoundError
from api.jobs import queue
from api.jobs.schemas import JobCreate, JobPublic
from api.schemas.geo import BBox
from labeling.models import ModelEntry

router = APIRouter(tags=["inference"])


class PredictRequest(BaseModel):
    model_id: int = Field(ge=1)
    """A registered model (``GET /api/v1/models``)."""
    layer: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]{1,100}$")
    """Input layer (default: the window's layer of the model's modality)."""
    outputs: list[str] | None = None
    """Any of ``cog``, ``geojson``, ``parquet``, ``stac`` (default per task)."""


class AoiPredictRequest(PredictRequest):
    bbox: BBox | None = None
    """WGS84 (min lon, min lat, max lon, max lat): the windows meeting it."""
    window_ids: list[int] | None = Field(default=None, min_length=1, max_length=10_000)
    dataset: str = Field(default="default", pattern=r"^[A-Za-z0-9_.\-]{1,100}$")


def _check_model(session, model_id: int, project_id: int) -> None:
    entry = session.get(ModelEntry, model_id)
    if entry is None or entry.project_id not in (None, project_id):
        raise NotFoundError(
            f"project {project_id} has no model {model_id}", fix="list models: GET /api/v1/models"
        )
    if not (entry.model_dir or entry.run_dir):
        raise InvalidInputError(f"model {model_id} has no files to load (model_dir/run_dir)")


def _submit(session, user, project_id: int, payload: dict) -> object:
    from api.routes.jobs import submit

    return submit(
        session,
        user=user,
        project_id=project_id,
        body=JobCreate(kind="inference", payload=payload, max_attempts=2),
    )


@router.post(
    "/projects/{project_id}/predictions",
    response_model=JobPublic,
    status_code=status.HTTP_201_CREATED,
)
def predict_aoi(project_id: int, body: AoiPredictRequest, session: SessionDep, user: CurrentUser):
    """Queue an inference job over the windows meeting ``bbox`` (or ``window_ids``, or all)."""
    auth.require(session, user=user, project_id=project_id, permission="manage")
    _check_model(session, body.model_id, project_id)
    payload = body.model_dump(exclude_none=True)
    if "window_ids" in payload:
        payload["windows"] = payload.pop("window_ids")
    return _submit(session, user, project_id, payload)


@router.post(
    "/windows/{window_id}/predict",
    response_model=JobPublic,
    responses={202: {"model": JobPublic, "description": "still running: follow the job"}},
)
def predict_window(
    row: WindowManage,
    body: PredictRequest,
    session: SessionDep,
    user: CurrentUser,
    response: Response,
    wait_s: float = Query(60.0, ge=0, le=300, description="How long to wait for the result"),
):
    """Predict one window: 200 with the finished job (artifacts in ``result``), 202 if a worker
    has not finished it within ``wait_s`` seconds, or 422 with the job's error."""
    _check_model(session, body.model_id, row.project_id)
    from labeling.models import DatasetRecord

    dataset = session.get(DatasetRecord, row.dataset_id)
    payload = body.model_dump(exclude_none=True) | {"windows": [row.id], "dataset": dataset.name}
    job = _submit(session, user, row.project_id, payload)
    deadline = time.monotonic() + wait_s
    while True:
        job = queue.get_job(session, job_id=job.id)
        session.commit()
        if job.status == "succeeded":
            return job
        if job.status in ("failed", "cancelled"):
            raise InvalidInputError(
                f"inference job {job.id} {job.status}: {job.message}",
                fix=f"see its logs: GET /api/v1/jobs/{job.id}/logs",
            )
        if time.monotonic() >= deadline:
            response.status_code = status.HTTP_202_ACCEPTED
            return job
        time.sleep(0.2)
