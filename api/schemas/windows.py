"""Datasets, windows (tasks), layers, sources, assignments and reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.geo import BBox

DatasetName = Field(default="default", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")


class AoiCreate(BaseModel):
    """A grid of windows over an AOI: give ``bbox`` or ``geojson`` (WGS84)."""

    bbox: BBox | None = None
    """(min lon, min lat, max lon, max lat); an inverted box is a 422."""
    geojson: dict[str, Any] | None = None
    """A GeoJSON geometry, Feature or FeatureCollection."""
    start: datetime
    end: datetime
    size: int = Field(default=256, ge=8, le=4096)
    resolution: float = Field(default=10.0, gt=0, le=1000)
    dataset: str = DatasetName

    @model_validator(mode="after")
    def _one(self):
        if (self.bbox is None) == (self.geojson is None):
            raise ValueError("give exactly one of bbox and geojson")
        return self


class PolygonsCreate(BaseModel):
    features: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    """GeoJSON features (WGS84); ``properties.name`` names a window."""
    start: datetime
    end: datetime
    resolution: float = Field(default=10.0, gt=0, le=1000)
    pad: int = Field(default=0, ge=0, le=1024)
    dataset: str = DatasetName


class DatasetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    name: str
    path: str
    created_at: datetime


class WindowPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    dataset_id: int
    name: str
    group: str
    crs: str
    resolution: float
    col_min: int
    row_min: int
    col_max: int
    row_max: int
    start: datetime
    end: datetime
    geometry: dict[str, Any]
    properties: dict[str, Any]
    status: str
    locked_by: int | None
    locked_until: datetime | None
    submitted_by: int | None
    valid_fraction: float | None


class WindowSummary(BaseModel):
    total: int
    """Windows that match the filters."""
    by_status: dict[str, int]
    """Every status (``labeling.models.STATUSES``), zero when no window has it."""


class WindowsCreated(BaseModel):
    dataset: DatasetPublic
    created: int
    skipped: int
    """Windows that existed already (same grid cell / name) and were kept."""
    windows: list[WindowPublic]


class LayerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    window_id: int | None
    name: str
    kind: str
    modality: str | None
    path: str | None
    crs: str | None
    info: dict[str, Any]
    created_at: datetime


class StacSourceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    url: str = Field(min_length=1, max_length=2000)
    """A STAC API root or a static catalog/collection URL (http/https) or local path."""
    collection: str = Field(min_length=1, max_length=200)
    modality: str = Field(default="sentinel2_l2a", min_length=1, max_length=64)
    max_cloud_cover: float | None = Field(default=None, ge=0, le=100)


Id = Annotated[int, Field(ge=1, le=2**31 - 1)]


class AssignmentCreate(BaseModel):
    user_id: Id
    window_ids: list[Id] = Field(min_length=1, max_length=10_000)


class AssignmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    window_id: int
    user_id: int
    created_at: datetime


class ReviewCreate(BaseModel):
    decision: Literal["accept", "reject"]
    comment: str = Field(default="", max_length=10_000)


class ReviewPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    window_id: int
    reviewer_id: int | None
    decision: str
    comment: str
    created_at: datetime


class WindowGridPublic(BaseModel):
    """A window's pixel grid, for clients that paint or read pixels on it (class masks)."""

    window_id: int
    crs: str
    proj4: str
    """The CRS as a PROJ string, for clients that project coordinates themselves (proj4js)."""
    resolution: float
    width: int
    height: int
    """Pixels across (columns) and down (rows); masks are ``height x width``, row-major."""
    transform: list[float]
    """Affine (a, b, c, d, e, f) from (column, row) to the window CRS."""
    corners_3857: dict[str, list[float]]
    """Web-Mercator (x, y) of the grid's outer corners ``top_left``, ``top_right``,
    ``bottom_left`` and ``bottom_right`` (its footprint on a web map). Placing pixels by an
    affine fit of the corners is off by centimetres inside a 640 m window and by metres in a
    large one: project through ``proj4`` and ``transform`` for exact positions."""
