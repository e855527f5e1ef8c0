"""Request and response schemas of the job endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobCreate(BaseModel):
    """A job to run in the background."""

    kind: str = Field(pattern=r"^[a-z_]{1,64}$")
    """``materialize``, ``finetune``, ``inference``, ``embeddings``."""
    payload: dict[str, Any] = Field(default_factory=dict)
    """The handler's arguments (see each handler's docs)."""
    max_attempts: int = Field(default=3, ge=1, le=20)


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: str
    payload: dict[str, Any]
    result: dict[str, Any] | None
    progress: float
    message: str | None
    attempts: int
    max_attempts: int
    worker_id: str | None
    cancel_requested: bool
    project_id: int | None
    created_by: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    lease_expires_at: datetime | None


class JobLogPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ts: datetime
    level: str
    line: str


class ArtifactPublic(BaseModel):
    name: str
    size_bytes: int
    url: str
