"""ORM models of the labelling domain (tables on ``api.database.Base``).

users -> api_keys; projects -> members (per-project roles), datasets -> windows (= labelling
tasks) -> annotations, reviews, assignments; layers (uploaded rasters, STAC sources); the model
registry. Geometries are GeoJSON mappings in WGS84 stored as JSON, so the schema is the same on
SQLite and PostgreSQL (no PostGIS needed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false as sa_false

from earthplat.tasks import TASK_NAMES
from labeling.db import Base, UTCDateTime, utcnow

ROLES = ("admin", "reviewer", "labeler", "viewer")
"""Project roles, most to least privileged."""
TASK_TYPES = TASK_NAMES
"""Project task types: the task registry's (``earthplat.tasks``)."""
STATUSES = ("unlabeled", "in_progress", "submitted", "accepted", "rejected")
"""Window (task) statuses: unlabeled -> in_progress -> submitted -> accepted | rejected;
rejected goes back to in_progress when it is worked on again."""
PROJECT_SETTINGS: dict[str, Any] = {
    "min_valid_fraction": 0.5,
    "self_review": False,
}
"""The workflow settings of a project and their defaults: windows whose imagery is valid over
less than ``min_valid_fraction`` of their pixels are handed out last; with ``self_review`` a
reviewer may accept or reject their own submission (a one-person project)."""
ORIGINS = ("human", "model")
"""Who made an annotation: a person, or a model's prediction turned into a pre-label."""


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    email: Mapped[str | None] = mapped_column(String(320))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    """Platform admin: every role in every project, manages users."""
    created_at: Mapped[datetime] = _created()


class ApiKey(Base):
    """A bearer key; only its SHA-256 is stored (keys are 256-bit random, so a fast hash is
    enough: no dictionary to attack)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), default="default", nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    """First characters of the key, shown in listings to recognise it."""
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = _created()


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    task_type: Mapped[str] = mapped_column(String(32), nullable=False)
    classes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, nullable=False)
    """Class schema: ``[{"value": int, "label": str, "color": "#rrggbb"}, ...]``."""
    sensors: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    settings: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict, server_default="{}", nullable=False
    )
    """Workflow settings that differ from ``PROJECT_SETTINGS``."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    def setting(self, name: str) -> Any:
        """The project's value of a workflow setting, else its default."""
        return (self.settings or {}).get(name, PROJECT_SETTINGS[name])


class ProjectMember(Base):
    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)


class DatasetRecord(Base):
    """An earthplat ``Dataset`` directory of a project (``path`` is its root)."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _created()


class WindowRecord(Base):
    """A window of a dataset, which is also a labelling task."""

    __tablename__ = "windows"
    __table_args__ = (
        UniqueConstraint("dataset_id", "name"),
        Index("ix_windows_project_status", "project_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    group: Mapped[str] = mapped_column(String(200), default="default", nullable=False)
    crs: Mapped[str] = mapped_column(String(32), nullable=False)
    resolution: Mapped[float] = mapped_column(Float, nullable=False)
    col_min: Mapped[int] = mapped_column(Integer, nullable=False)
    row_min: Mapped[int] = mapped_column(Integer, nullable=False)
    col_max: Mapped[int] = mapped_column(Integer, nullable=False)
    row_max: Mapped[int] = mapped_column(Integer, nullable=False)
    start: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    end: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    """WGS84 footprint, GeoJSON."""
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="unlabeled", nullable=False)
    locked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submitted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    """Who submitted the labels now under review (a reviewer cannot judge their own)."""
    valid_fraction: Mapped[float | None] = mapped_column(Float)
    """Share of the window's pixels with valid imagery, best over its periods (set when it is
    materialised; ``None`` before)."""
    updated_at: Mapped[datetime] = _created()

    def to_window(self):
        """The earthplat ``Window`` of this row."""
        from earthplat.data.window import Window

        return Window(
            self.name,
            self.crs,
            self.resolution,
            (self.col_min, self.row_min, self.col_max, self.row_max),
            self.start,
            self.end,
            self.group,
            dict(self.properties or {}),
        )


class Layer(Base):
    """A raster layer (an uploaded GeoTIFF, a materialised layer) or a registered STAC source."""

    __tablename__ = "layers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    """``upload``, ``stac`` or ``materialized``."""
    modality: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str | None] = mapped_column(Text)
    """File path of a raster layer; the URL of a STAC source."""
    crs: Mapped[str | None] = mapped_column(String(64))
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    """Raster facts (size, bands, bounds) or the source description (collection, ...)."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()


class Annotation(Base):
    """A labelled geometry; ``version`` starts at 1 and grows with each update (optimistic
    concurrency: an update names the version it read)."""

    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    window_id: Mapped[int] = mapped_column(
        ForeignKey("windows.id", ondelete="CASCADE"), nullable=False, index=True
    )
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    """WGS84 GeoJSON geometry (of a mask: its outline, derived from the pixels)."""
    mask: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """Painted pixels on the window's grid (``labeling.masks``: RLE); None for drawn shapes."""
    class_value: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)
    """Numeric target for regression projects."""
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    origin: Mapped[str] = mapped_column(
        String(16), default="human", server_default="human", nullable=False
    )
    """``human``, or ``model`` for a pre-label made from a prediction."""
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    """The registered model whose prediction made a pre-label."""
    edited: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sa_false(), nullable=False
    )
    """A person changed this pre-label (its geometry or label) after the model made it."""
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[int] = mapped_column(
        ForeignKey("windows.id", ondelete="CASCADE"), nullable=False, index=True
    )
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision: Mapped[str] = mapped_column(String(16), nullable=False)
    """``accept`` or ``reject``."""
    comment: Mapped[str] = mapped_column(Text, default="", nullable=False)
    created_at: Mapped[datetime] = _created()


class TaskSkip(Base):
    """A labeller skipped this window: ``tasks/next`` hands it to them again only when nothing
    else is left (and forgets the skip once the window is submitted)."""

    __tablename__ = "task_skips"
    __table_args__ = (UniqueConstraint("window_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[int] = mapped_column(
        ForeignKey("windows.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = _created()


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("window_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[int] = mapped_column(
        ForeignKey("windows.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = _created()


class ModelEntry(Base):
    """A registered model: a fine-tuning run and what it produced."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    task_type: Mapped[str | None] = mapped_column(String(32))
    run_dir: Mapped[str | None] = mapped_column(Text)
    """The run directory (``metrics.json``, ``config.yaml``, ``checkpoints/``, ``model/``)."""
    model_dir: Mapped[str | None] = mapped_column(Text)
    """The exported model (``export_task_model`` output) that inference loads."""
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    artifacts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    """The model this one was fine-tuned from."""
    job_id: Mapped[int | None] = mapped_column(Integer)
    """The job that produced it (no foreign key: jobs may be pruned)."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
