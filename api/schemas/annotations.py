"""Annotations (labelled geometries) and the model registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AnnotationCreate(BaseModel):
    geometry: dict[str, Any]
    """GeoJSON geometry in WGS84 lon/lat."""
    class_value: int | None = Field(default=None, ge=-(2**31), lt=2**31)
    """A ``value`` of the project's class schema (class tasks)."""
    value: float | None = Field(default=None, allow_inf_nan=False)
    """Numeric target (regression tasks)."""
    properties: dict[str, Any] = Field(default_factory=dict)


class AnnotationUpdate(BaseModel):
    version: int | None = Field(default=None, ge=1, lt=2**31)
    """The version the client read; or send it as ``If-Match``. A stale version gets 409."""
    geometry: dict[str, Any] | None = None
    class_value: int | None = Field(default=None, ge=-(2**31), lt=2**31)
    value: float | None = Field(default=None, allow_inf_nan=False)
    properties: dict[str, Any] | None = None


class AnnotationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    window_id: int
    geometry: dict[str, Any]
    class_value: int | None
    value: float | None
    properties: dict[str, Any]
    author_id: int | None
    origin: str
    """``human``, or ``model`` for a pre-label made from a prediction."""
    model_id: int | None
    edited: bool
    """A person changed this pre-label after the model made it."""
    version: int
    created_at: datetime
    updated_at: datetime


class ModelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int | None
    name: str
    task_type: str | None
    run_dir: str | None
    model_dir: str | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    artifacts: dict[str, Any]
    parent_id: int | None
    """The model whose encoder this one started from."""
    job_id: int | None
    created_by: int | None
    created_at: datetime
    base_encoder: str | None = None
    """The encoder it started from, as ``GET /api/v1/encoders`` names it: ``preset:NAME``,
    ``model:ID`` (the parent), or ``timm:MODEL`` / ``pretrained:PATH`` / ``custom``."""
    trained_on: dict[str, Any] = Field(default_factory=dict)
    """``{windows: n, statuses, layers, dataset}`` of the fine-tune that made it."""
    test_metrics: dict[str, Any] = Field(default_factory=dict)
    """The metrics of the test split (``test/...``), or all metrics when it had none."""
