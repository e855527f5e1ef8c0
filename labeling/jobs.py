"""Job tables: a job row per unit of background work, and its log lines (the platform's queue,
``api.jobs``, and the labelling domain, e.g. project deletion, both read them).

A job is ``queued`` until a worker claims it (``running``, with a lease it keeps extending by
heartbeats), then ``succeeded``, ``failed`` or ``cancelled``. A worker that dies stops
heartbeating; once ``lease_expires_at`` passes, another worker reclaims the job (attempts count
every claim, so a job that keeps killing workers ends ``failed`` after ``max_attempts``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

import labeling.models  # noqa: F401 - the projects and users tables jobs refer to
from labeling.db import Base, JSONType, UTCDateTime, utcnow

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    """Handler name: ``materialize``, ``finetune``, ``inference``, ``embeddings`` ..."""
    status: Mapped[str] = mapped_column(String(16), default="queued")
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    """The handler's arguments (JSON)."""
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    """What the handler returned: output paths (``artifacts``), metrics ..."""
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Last progress message, or the error of a failed job."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    """Not claimed before this time (retry back-off)."""
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_jobs_status_available", "status", "available_at"),
        Index("ix_jobs_project", "project_id", "id"),
    )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Job(id={self.id}, kind={self.kind!r}, status={self.status!r})"


class JobLog(Base):
    __tablename__ = "job_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(16), default="info")
    line: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_job_logs_job", "job_id", "id"),)
