"""Jobs: submit, list, follow (progress and logs), cancel, download what they produced.

Permissions: submitting or cancelling a job needs the project's ``manage`` permission (admin);
reading jobs, logs and artifacts needs ``read``. Jobs without a project (diagnostic ``steps``)
are for platform admins only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse

from api import auth
from api.deps import CurrentUser, SessionDep, SettingsDep
from api.errors import InvalidInputError, NotFoundError
from api.jobs import payloads, queue
from api.jobs.handlers import kinds
from api.jobs.schemas import ArtifactPublic, JobCreate, JobLogPublic, JobPublic
from labeling.jobs import Job, JobLog

router = APIRouter(tags=["jobs"])
ADMIN_KINDS = {"steps"}
"""Kinds only platform admins may submit."""


def _job(session, user, job_id: int, permission: str) -> Job:
    try:
        job = queue.get_job(session, job_id=job_id)
    except queue.JobNotFoundError:
        raise NotFoundError(
            f"no job {job_id}", fix="list jobs at GET /api/v1/projects/ID/jobs"
        ) from None
    if job.project_id is None:
        auth.require_admin(user)
    else:
        auth.require(session, user=user, project_id=job.project_id, permission=permission)
    return job


def submit(session, *, user, project_id: int | None, body: JobCreate) -> Job:
    """Validate and enqueue (shared with the inference routes)."""
    if body.kind not in kinds():
        raise InvalidInputError(
            f"unknown job kind {body.kind!r}", fix=f"use one of {', '.join(kinds())}"
        )
    if body.kind in ADMIN_KINDS or project_id is None:
        auth.require_admin(user)
    if project_id is not None:
        auth.require(session, user=user, project_id=project_id, permission="manage")
    payload = payloads.validate(
        session, kind=body.kind, payload=body.payload, project_id=project_id
    )
    session.commit()  # end the read transaction; enqueue opens a writer
    return queue.enqueue(
        session,
        kind=body.kind,
        payload=payload,
        project_id=project_id,
        created_by=user.id,
        max_attempts=body.max_attempts,
    )


@router.post(
    "/projects/{project_id}/jobs", response_model=JobPublic, status_code=status.HTTP_201_CREATED
)
def create_job(project_id: int, body: JobCreate, session: SessionDep, user: CurrentUser) -> Job:
    """Queue a job of the project; a worker (``python -m api.jobs.worker``) runs it."""
    return submit(session, user=user, project_id=project_id, body=body)


@router.get("/jobs/kinds")
def job_kinds(user: CurrentUser) -> dict[str, dict]:
    """Every job kind with the JSON schema of its payload."""
    return {kind: payloads.PAYLOADS[kind].model_json_schema() for kind in kinds()}


@router.post("/jobs", response_model=JobPublic, status_code=status.HTTP_201_CREATED)
def create_system_job(body: JobCreate, session: SessionDep, user: CurrentUser) -> Job:
    """Queue a job that belongs to no project (platform admins)."""
    return submit(session, user=user, project_id=None, body=body)


@router.get("/projects/{project_id}/jobs", response_model=list[JobPublic])
def list_jobs(
    project_id: int,
    session: SessionDep,
    user: CurrentUser,
    status: str | None = Query(None, pattern="^(queued|running|succeeded|failed|cancelled)$"),
    kind: str | None = None,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> list[Job]:
    """The project's jobs, newest first."""
    auth.require(session, user=user, project_id=project_id, permission="read")
    return queue.list_jobs(
        session, project_id=project_id, status=status, kind=kind, limit=limit, offset=offset
    )


@router.get("/jobs/{job_id}", response_model=JobPublic)
def read_job(job_id: int, session: SessionDep, user: CurrentUser) -> Job:
    """A job with its status, progress (0-1), message and result."""
    return _job(session, user, job_id, "read")


@router.get("/jobs/{job_id}/logs", response_model=list[JobLogPublic])
def read_logs(
    job_id: int,
    session: SessionDep,
    user: CurrentUser,
    after_id: int = Query(0, ge=0, description="Only lines after this id (to tail a job)"),
    limit: int = Query(1000, ge=1, le=10_000),
) -> list[JobLog]:
    _job(session, user, job_id, "read")
    return queue.logs(session, job_id=job_id, after_id=after_id, limit=limit)


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: int, session: SessionDep, user: CurrentUser) -> Job:
    """Cancel: a queued job at once, a running one at its next step (status follows)."""
    _job(session, user, job_id, "manage")
    session.commit()
    return queue.cancel(session, job_id=job_id)


def _artifacts(job: Job, data_dir: Path) -> dict[str, Path]:
    """``result.artifacts`` ({name: path}) limited to files inside the data dir."""
    root = Path(data_dir).expanduser().resolve()
    out = {}
    for name, path in ((job.result or {}).get("artifacts") or {}).items():
        p = Path(path)
        p = (root / p if not p.is_absolute() else p).resolve()
        if p.is_file() and p.is_relative_to(root):
            out[str(name)] = p
    return out


@router.get("/jobs/{job_id}/artifacts", response_model=list[ArtifactPublic])
def list_artifacts(
    job_id: int, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> list[ArtifactPublic]:
    """Files the job produced (predictions as COG and GeoJSON, exports ...)."""
    job = _job(session, user, job_id, "read")
    return [
        ArtifactPublic(
            name=name,
            size_bytes=path.stat().st_size,
            url=f"/api/v1/jobs/{job_id}/artifacts/{name}",
        )
        for name, path in sorted(_artifacts(job, settings.data_dir).items())
    ]


@router.get("/jobs/{job_id}/artifacts/{name}", response_class=FileResponse)
def download_artifact(
    job_id: int, name: str, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> FileResponse:
    job = _job(session, user, job_id, "read")
    found = _artifacts(job, settings.data_dir)
    if name not in found:
        raise NotFoundError(
            f"job {job_id} has no artifact {name!r}"
            + ("" if job.status == "succeeded" else f" (the job is {job.status})"),
            fix=f"list them at GET /api/v1/jobs/{job_id}/artifacts",
        )
    path = found[name]
    media = {
        ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
        ".geojson": "application/geo+json",
        ".json": "application/json",
        ".parquet": "application/vnd.apache.parquet",
        ".npy": "application/octet-stream",
    }.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, filename=path.name)
