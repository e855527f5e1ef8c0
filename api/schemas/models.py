"""The model registry's comparison of two models (``ModelPublic`` itself lives with the
annotations, in ``api.schemas.annotations``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from api.schemas.annotations import ModelPublic


class ModelMetricComparison(BaseModel):
    name: str
    a: float
    b: float
    better: Literal["a", "b"] | None
    """Higher is better, except for names containing loss, error, mae or rmse; ``None``: a tie."""


class ModelTestWindows(BaseModel):
    a: list[int] | None
    """Window ids model a was tested on (``None``: not recorded)."""
    b: list[int] | None
    intersection: list[int] | None
    """Tested on by both (``None`` unless both were recorded)."""


class ModelComparison(BaseModel):
    a: ModelPublic
    b: ModelPublic
    metrics: list[ModelMetricComparison]
    """The metrics both models have, by name."""
    test_windows: ModelTestWindows
