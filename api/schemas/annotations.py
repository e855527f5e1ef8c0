"""Annotations (labelled geometries) and the model registry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AnnotationMask(BaseModel):
    """Painted pixels on the window's grid (``labeling.masks``)."""

    encoding: Literal["rle"] = "rle"
    shape: list[int]
    """``[height, width]``: the window's grid (rows, columns)."""
    counts: list[int]
    """Run lengths over the pixels, row by row, alternating unset/set and starting with unset
    (the first is 0 when the first pixel is set); they sum to height * width."""


class AnnotationCreate(BaseModel):
    geometry: dict[str, Any] | None = None
    """GeoJSON geometry in WGS84 lon/lat (a drawn shape). Leave it out for a mask."""
    mask: AnnotationMask | None = None
    """Painted pixels (segmentation): the server derives ``geometry`` (the pixels' outline,
    a MultiPolygon); when both are sent the mask wins and the geometry is ignored."""
    class_value: int | None = Field(default=None, ge=-(2**31), lt=2**31)
    """A ``value`` of the project's class schema (class tasks)."""
    value: float | None = Field(default=None, allow_inf_nan=False)
    """Numeric target (regression tasks)."""
    properties: dict[str, Any] = Field(default_factory=dict)


class AnnotationUpdate(BaseModel):
    version: int | None = Field(default=None, ge=1, lt=2**31)
    """The version the client read; or send it as ``If-Match``. A stale version gets 409."""
    geometry: dict[str, Any] | None = None
    """A new shape (drawn annotations only)."""
    mask: AnnotationMask | None = None
    """New pixels: replaces the mask and its derived geometry (a geometry sent too is ignored)."""
    class_value: int | None = Field(default=None, ge=-(2**31), lt=2**31)
    value: float | None = Field(default=None, allow_inf_nan=False)
    properties: dict[str, Any] | None = None


Id = Annotated[int, Field(ge=1, lt=2**31)]


class AnnotationMerge(BaseModel):
    ids: list[Id] = Field(min_length=2, max_length=1000)
    """Annotations of one window and one class; the first one is kept and holds the union."""
    versions: dict[Id, Id]
    """``{id: the version read}`` for every id; a stale one gets 409 and nothing changes."""


class AnnotationSplit(BaseModel):
    line: dict[str, Any]
    """A GeoJSON LineString (WGS84) crossing the polygon, from outside to outside."""
    version: int | None = Field(default=None, ge=1, lt=2**31)
    """The version read; or send it as ``If-Match``."""


class AnnotationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    window_id: int
    geometry: dict[str, Any]
    """WGS84 GeoJSON; for a mask, the outline of its pixels."""
    mask: dict[str, Any] | None = None
    """The painted pixels (RLE on the window's grid); null for drawn shapes."""
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
