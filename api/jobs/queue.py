"""Queue operations on the ``jobs`` table: enqueue, claim, heartbeat, finish, retry, cancel.

Every function takes the session keyword-only and commits its own short transaction, so a
worker never holds a database lock while a handler runs.

Claiming is race-free on both back ends:

- PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks the oldest ready job that no other
  transaction has locked, so concurrent claimers each get a different job without waiting.
- SQLite: the claim runs in a ``BEGIN IMMEDIATE`` transaction (one writer at a time across
  processes) and flips the row with a conditional ``UPDATE ... WHERE status = 'queued'``; a
  claimer that loses a race sees rowcount 0 and tries the next job.

Ownership: a running job belongs to ``worker_id`` until its lease expires. Heartbeats, progress,
completion and failure are conditional on ``worker_id`` (and ``status = 'running'``), so a
worker that lost its lease (it stalled, and another worker reclaimed the job) cannot overwrite
the new owner's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.database import begin_write, is_sqlite
from labeling.db import utcnow
from labeling.jobs import FINISHED, Job, JobLog

MAX_LINE = 4000
"""Longest stored log line (characters); longer lines are cut."""


class JobError(Exception):
    """A queue operation that cannot be done (unknown job, finished job)."""


class JobNotFoundError(JobError, LookupError):
    pass


def _write(session: Session) -> None:
    if not session.in_transaction():
        begin_write(session)


def _sqlite(session: Session) -> bool:
    return is_sqlite(str(session.get_bind().url))


def enqueue(
    session: Session,
    *,
    kind: str,
    payload: dict[str, Any] | None = None,
    project_id: int | None = None,
    created_by: int | None = None,
    max_attempts: int = 3,
) -> Job:
    """Add a queued job and return it (committed, with its id)."""
    if max_attempts < 1:
        raise JobError("max_attempts must be >= 1")
    _write(session)
    job = Job(
        kind=kind,
        payload=dict(payload or {}),
        project_id=project_id,
        created_by=created_by,
        max_attempts=max_attempts,
        status="queued",
        progress=0.0,
        attempts=0,
        cancel_requested=False,
        available_at=utcnow(),
        created_at=utcnow(),
    )
    session.add(job)
    session.commit()
    return job


def get_job(session: Session, *, job_id: int) -> Job:
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise JobNotFoundError(f"no job {job_id}")
    return job


def reclaim_expired(session: Session, *, now: datetime | None = None) -> int:
    """Requeue running jobs whose lease expired (their worker died or stalled); a job that has
    used all its attempts fails instead, and one whose cancel was requested is cancelled.
    Returns the number of jobs touched."""
    now = now or utcnow()
    _write(session)
    query = select(Job.id).where(Job.status == "running", Job.lease_expires_at < now)
    if not _sqlite(session):  # never wait on (or deadlock with) another reclaimer
        query = query.with_for_update(skip_locked=True)
    ids = list(session.execute(query).scalars())
    if not ids:
        session.commit()
        return 0
    expired = Job.id.in_(ids) & (Job.status == "running")  # each update sees the last
    n = 0
    n += session.execute(
        update(Job)
        .where(expired, Job.cancel_requested.is_(True))
        .values(status="cancelled", finished_at=now, worker_id=None, lease_expires_at=None)
    ).rowcount
    n += session.execute(
        update(Job)
        .where(expired, Job.attempts >= Job.max_attempts)
        .values(
            status="failed",
            finished_at=now,
            worker_id=None,
            lease_expires_at=None,
            message="the worker running it stopped heartbeating (lease expired) on its last "
            "attempt",
        )
    ).rowcount
    n += session.execute(
        update(Job)
        .where(expired)
        .values(status="queued", worker_id=None, lease_expires_at=None, available_at=now)
    ).rowcount
    session.commit()
    return n


def claim(
    session: Session,
    *,
    worker_id: str,
    lease_s: float = 60.0,
    kinds: list[str] | None = None,
    now: datetime | None = None,
) -> Job | None:
    """Take the oldest ready job (queued, available) for ``worker_id``: it becomes ``running``
    with a lease of ``lease_s`` seconds. ``None`` if no job is ready."""
    reclaim_expired(session, now=now)
    ready = [Job.status == "queued", Job.available_at <= (now or utcnow())]
    if kinds:
        ready.append(Job.kind.in_(kinds))
    sqlite = _sqlite(session)
    for _ in range(20):  # SQLite: a lost race moves on to the next candidate
        now_ = now or utcnow()
        _write(session)
        query = select(Job.id).where(*ready).order_by(Job.id).limit(1)
        if not sqlite:
            query = query.with_for_update(skip_locked=True)
        job_id = session.execute(query).scalar_one_or_none()
        if job_id is None:
            session.commit()
            return None
        updated = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(
                status="running",
                worker_id=worker_id,
                attempts=Job.attempts + 1,
                lease_expires_at=now_ + timedelta(seconds=lease_s),
                heartbeat_at=now_,
                started_at=now_,
            )
        ).rowcount
        session.commit()
        if updated == 1:
            return get_job(session, job_id=job_id)
    return None


@dataclass
class Beat:
    """What a heartbeat learned."""

    owned: bool
    """The worker still holds the job (False: lease lost, job reclaimed or finished)."""
    cancel_requested: bool


def heartbeat(session: Session, *, job_id: int, worker_id: str, lease_s: float = 60.0) -> Beat:
    """Extend the lease of a job this worker runs."""
    now = utcnow()
    _write(session)
    n = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
        .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_s))
    ).rowcount
    cancel = session.execute(select(Job.cancel_requested).where(Job.id == job_id)).scalar()
    session.commit()
    return Beat(owned=n == 1, cancel_requested=bool(cancel))


def set_progress(
    session: Session,
    *,
    job_id: int,
    worker_id: str,
    progress: float | None = None,
    message: str | None = None,
) -> bool:
    values: dict[str, Any] = {}
    if progress is not None:
        values["progress"] = min(max(float(progress), 0.0), 1.0)
    if message is not None:
        values["message"] = message[:MAX_LINE]
    if not values:
        return True
    _write(session)
    n = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
        .values(**values)
    ).rowcount
    session.commit()
    return n == 1


def append_log(session: Session, *, job_id: int, line: str, level: str = "info") -> None:
    _write(session)
    session.add(JobLog(job_id=job_id, ts=utcnow(), level=level, line=str(line)[:MAX_LINE]))
    session.commit()


def logs(session: Session, *, job_id: int, after_id: int = 0, limit: int = 1000) -> list[JobLog]:
    """Log lines of a job in order, those with ``id > after_id`` (for tailing)."""
    query = (
        select(JobLog)
        .where(JobLog.job_id == job_id, JobLog.id > after_id)
        .order_by(JobLog.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _finish(session: Session, job_id: int, worker_id: str, **values: Any) -> bool:
    _write(session)
    n = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
        .values(finished_at=utcnow(), lease_expires_at=None, **values)
    ).rowcount
    session.commit()
    return n == 1


def complete(
    session: Session, *, job_id: int, worker_id: str, result: dict[str, Any] | None = None
) -> bool:
    """Mark a job succeeded (False if this worker no longer owns it)."""
    return _finish(
        session, job_id, worker_id, status="succeeded", progress=1.0, result=result or {}
    )


def fail(
    session: Session,
    *,
    job_id: int,
    worker_id: str,
    error: str,
    retry: bool = True,
    backoff_s: float = 5.0,
) -> str | None:
    """Record a failure. With ``retry`` and attempts left, the job is queued again after
    ``backoff_s * 2**(attempts-1)`` seconds; otherwise it is ``failed``. Returns the new status
    (``None`` if this worker no longer owns the job)."""
    job = get_job(session, job_id=job_id)
    session.commit()
    if job.worker_id != worker_id or job.status != "running":
        return None
    if retry and job.attempts < job.max_attempts:
        delay = backoff_s * 2 ** max(job.attempts - 1, 0)
        _write(session)
        n = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
            .values(
                status="queued",
                worker_id=None,
                lease_expires_at=None,
                message=f"attempt {job.attempts} failed: {error}"[:MAX_LINE],
                available_at=utcnow() + timedelta(seconds=delay),
            )
        ).rowcount
        session.commit()
        return "queued" if n == 1 else None
    done = _finish(session, job_id, worker_id, status="failed", message=error[:MAX_LINE])
    return "failed" if done else None


def release(session: Session, *, job_id: int, worker_id: str) -> bool:
    """Give a running job back to the queue without counting the attempt (the worker is
    shutting down); a resumable handler picks up where it stopped."""
    _write(session)
    n = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
        .values(
            status="queued",
            worker_id=None,
            lease_expires_at=None,
            attempts=Job.attempts - 1,
            available_at=utcnow(),
        )
    ).rowcount
    session.commit()
    return n == 1


def mark_cancelled(session: Session, *, job_id: int, worker_id: str) -> bool:
    """The worker stopped a job whose cancellation was requested."""
    return _finish(session, job_id, worker_id, status="cancelled", message="cancelled")


def cancel(session: Session, *, job_id: int) -> Job:
    """Cancel a job: a queued one at once; a running one is flagged and its worker stops it at
    the next step. A finished job is left as it is."""
    now = utcnow()
    _write(session)
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=now, message="cancelled")
    )
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running")
        .values(cancel_requested=True, message="cancellation requested")
    )
    session.commit()
    return get_job(session, job_id=job_id)


def list_jobs(
    session: Session,
    *,
    project_id: int | None = None,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Job]:
    query = select(Job)
    if project_id is not None:
        query = query.where(Job.project_id == project_id)
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return list(session.scalars(query.order_by(Job.id.desc()).limit(limit).offset(offset)))


def active(session: Session) -> list[Job]:
    """Jobs not finished (queued or running)."""
    return list(session.scalars(select(Job).where(~Job.status.in_(FINISHED)).order_by(Job.id)))


__all__ = [
    "Beat",
    "JobError",
    "JobNotFoundError",
    "active",
    "append_log",
    "cancel",
    "claim",
    "complete",
    "enqueue",
    "fail",
    "get_job",
    "heartbeat",
    "list_jobs",
    "logs",
    "mark_cancelled",
    "reclaim_expired",
    "release",
    "set_progress",
]
