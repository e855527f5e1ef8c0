"""Predictions in the labelling loop: prediction layers (tiles of an inference job's outputs),
pre-labels and likely-wrong labels."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.annotations import AnnotationPublic


class LegendEntry(BaseModel):
    value: int
    label: str
    color: str
    """``#rrggbb``."""


class PredictionStyle(BaseModel):
    """What an inference job predicted and how its tiles are coloured."""

    job_id: int
    model_id: int | None
    """The registered model (``GET /api/v1/models``); None for a job run from a model path."""
    model_name: str
    task_type: str
    kind: Literal["classes", "values"]
    legend: list[LegendEntry]
    """Classes: the COG's legend, else the project's classes (empty for values)."""
    range: list[float] | None
    """Values: ``[lo, hi]`` of the predicted values (tiles take ``?lo=&hi=`` to override)."""
    ramp: Literal["viridis"] | None
    """Values: the colour ramp over ``range``."""
    created_at: datetime


class PredictionLayerPublic(PredictionStyle):
    """One inference job's prediction of a window."""

    version: str
    """A digest of the prediction file and its colouring; it changes when either does."""
    tiles: str
    """URL template: ``{z}``, ``{x}``, ``{y}`` to fill in (holds ``?v=``; add ``&lo=&hi=``)."""


class ProjectPredictionPublic(PredictionStyle):
    """One succeeded inference job of a project."""

    windows: int
    """Windows it predicted."""
    bounds: list[float] | None
    """WGS84 (min lon, min lat, max lon, max lat) of those windows."""
    mosaic_tiles: str | None
    """URL template of the AOI mosaic's tiles, when the job wrote one (a ``bbox`` run)."""


class PrelabelCreate(BaseModel):
    job_id: int = Field(ge=1, lt=2**31)
    """A succeeded inference job of the window's project
    (``GET /api/v1/projects/ID/predictions``)."""
    min_score: float | None = Field(default=None, ge=0, le=1)
    """Detection: only predictions scoring at least this."""


class PrelabelsPublic(BaseModel):
    created: list[AnnotationPublic]
    """The new model-made annotations (``origin="model"``)."""
    replaced: int
    """Earlier unedited pre-labels of the window that were deleted."""
    dropped: int
    """Predicted shapes left out: slivers, or outlines that would not fit the annotation
    limits."""


class LikelyWrongWindow(BaseModel):
    window_id: int
    name: str
    status: str
    disagreement: float
    """Segmentation: the share of labelled pixels whose predicted class differs from the label;
    classification: 1 when the predicted class differs, else 0."""
    labelled_pixels: int
    """Pixels covered by the window's annotations where the model predicted."""
    predicted_class: int | None = None
    """Classification: the class the model predicted."""
    label_class: int | None = None
    """Classification: the window's (latest) labelled class."""


class LikelyWrongPublic(BaseModel):
    job_id: int
    model_id: int | None
    windows: list[LikelyWrongWindow]
    """Highest disagreement first."""
