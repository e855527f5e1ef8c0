"""Projects, their class schemas and members."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from earthplat.tasks import TASK_NAMES
from labeling.models import PROJECT_SETTINGS, ROLES

TaskType = Literal[TASK_NAMES]  # type: ignore[valid-type] - the task registry's names
Role = Literal[ROLES]  # type: ignore[valid-type] - the project roles of labeling.models


class ClassDef(BaseModel):
    value: int = Field(ge=-(2**31), lt=2**31)
    label: str = Field(min_length=1, max_length=200)
    color: str = Field(default="#888888", pattern=r"^#[0-9a-fA-F]{6}$")


def _check_classes(classes: list[ClassDef] | None) -> list[ClassDef] | None:
    if classes is None:
        return None
    values = [c.value for c in classes]
    dup = sorted({v for v in values if values.count(v) > 1})
    if dup:
        raise ValueError(f"class values must be unique; repeated: {dup}")
    return classes


def _check_sensors(sensors: list[str] | None) -> list[str] | None:
    if sensors is None:
        return None
    from earthplat.errors import SensorError
    from earthplat.sensors import get_modality

    out = []
    for name in sensors:
        try:
            out.append(get_modality(name).name)
        except SensorError as e:
            raise ValueError(str(e)) from None
    return out


class ProjectSettingsPatch(BaseModel):
    """Workflow settings to change; those left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    min_valid_fraction: float | None = Field(default=None, ge=0, le=1)
    """Windows whose imagery is valid over less than this share of pixels are handed out last."""
    self_review: bool | None = None
    """Whether a reviewer may accept or reject their own submission (one-person projects)."""

    @field_validator("min_valid_fraction", "self_review", mode="before")
    @classmethod
    def _not_null(cls, value, info):
        if value is None:
            raise ValueError(f"{info.field_name} may not be null; leave it out to keep it")
        return value


class ProjectSettings(BaseModel):
    """A project's workflow settings (its own values over the defaults)."""

    min_valid_fraction: float = PROJECT_SETTINGS["min_valid_fraction"]
    self_review: bool = PROJECT_SETTINGS["self_review"]


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)
    task_type: TaskType
    classes: list[ClassDef] = Field(default_factory=list, max_length=1000)
    sensors: list[str] = Field(default_factory=list, max_length=32)
    start: datetime | None = None
    end: datetime | None = None
    settings: ProjectSettingsPatch = Field(default_factory=ProjectSettingsPatch)

    _classes = field_validator("classes")(_check_classes)
    _sensors = field_validator("sensors")(_check_sensors)

    @model_validator(mode="after")
    def _time(self):
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ProjectUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    classes: list[ClassDef] | None = Field(default=None, max_length=1000)
    sensors: list[str] | None = Field(default=None, max_length=32)
    start: datetime | None = None
    end: datetime | None = None
    settings: ProjectSettingsPatch | None = None
    """Workflow settings to change (merged into the project's)."""

    _classes = field_validator("classes")(_check_classes)
    _sensors = field_validator("sensors")(_check_sensors)

    @field_validator("name", "description", "classes", "sensors", "settings", mode="before")
    @classmethod
    def _not_null(cls, value, info):
        if value is None:  # only start and end may be cleared
            raise ValueError(f"{info.field_name} may not be null; leave it out to keep it")
        return value


class ProjectPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    task_type: str
    classes: list[ClassDef]
    sensors: list[str]
    start: datetime | None
    end: datetime | None
    settings: ProjectSettings
    created_by: int | None
    created_at: datetime
    updated_at: datetime


class MemberUpdate(BaseModel):
    role: Role


class MemberPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    project_id: int
    user_id: int
    role: str


class TaskPublic(BaseModel):
    """One task kind of the registry (``earthplat.tasks``), as the labelling UI needs it."""

    name: str
    description: str
    class_task: bool
    """Labels are classes of the project's schema."""
    per_window: bool
    """One label per window rather than per pixel or object."""
    pixel_classes: bool
    """A class per pixel: class masks may be painted on the window's grid."""
    output: str
    """What inference writes: ``classes``, ``values`` or ``detections``."""
