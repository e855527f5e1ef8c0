"""Typed job payloads, one per job kind, validated when a job is submitted.

A payload is checked twice at submit, so the worker never meets a bad request: its shape
(pydantic: unknown fields, wrong types and ranges are a 422 naming the field), then against
the database (``check``: windows, datasets, models, sources and configs that do not exist in
the project are a 422 naming the value). Handlers read the same model (``parse``), never raw
dicts with ``.get()``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from api.errors import InvalidInputError
from api.schemas.geo import BBox
from labeling.services.encoders import ENCODER_ID

NAME = r"^[A-Za-z0-9_.\-]{1,100}$"
STATUSES = ("unlabeled", "in_progress", "submitted", "accepted", "rejected")


class Payload(BaseModel):
    """The payload of one job kind; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    def check(self, session: Any, project_id: int | None) -> None:
        """Database checks of the values the payload names (the default: none)."""


# --- pieces several kinds share -----------------------------------------------------------------
class WindowsPayload(Payload):
    dataset: str = Field(default="default", pattern=NAME)
    """The project dataset (name)."""
    windows: list[int] | None = Field(default=None, min_length=1, max_length=100_000)
    """Window ids (default: every window of the dataset)."""

    def check(self, session: Any, project_id: int | None) -> None:
        from sqlalchemy import select

        from labeling.models import DatasetRecord, WindowRecord

        dataset = session.scalar(
            select(DatasetRecord).where(
                DatasetRecord.project_id == project_id, DatasetRecord.name == self.dataset
            )
        )
        if dataset is None:
            raise InvalidInputError(
                f"project {project_id} has no dataset {self.dataset!r}",
                fix="create windows first (POST /api/v1/projects/ID/windows/...)",
            )
        if self.windows:
            found = set(
                session.scalars(
                    select(WindowRecord.id).where(
                        WindowRecord.dataset_id == dataset.id, WindowRecord.id.in_(self.windows)
                    )
                )
            )
            unknown = sorted(set(self.windows) - found)
            if unknown:
                raise InvalidInputError(
                    f"dataset {self.dataset!r} of project {project_id} has no window(s) "
                    f"{unknown[:10]}",
                    fix="list its windows: GET /api/v1/projects/ID/windows",
                )


class ModelRef(BaseModel):
    model_id: int | None = Field(default=None, ge=1, lt=2**31)
    """A registered model (``GET /api/v1/models``)."""
    model_path: str | None = Field(default=None, min_length=1, max_length=1000)
    """Or a model directory inside the data dir."""
    layers: dict[str, str] | None = None
    """Modality -> layer (default: for each modality the model reads, the window's first
    layer of it; ``earthplat.inference.model_layers``)."""

    @model_validator(mode="after")
    def _one_model(self):
        if (self.model_id is None) == (self.model_path is None):
            raise ValueError("give exactly one of model_id (a registered model) or model_path")
        return self

    def check_model(self, session: Any, project_id: int | None) -> None:
        if self.model_id is None:
            return
        from labeling.models import ModelEntry

        entry = session.get(ModelEntry, self.model_id)
        if entry is None or entry.project_id not in (None, project_id):
            raise InvalidInputError(
                f"project {project_id} has no model {self.model_id}",
                fix="list models: GET /api/v1/models",
            )
        if not (entry.model_dir or entry.run_dir):
            raise InvalidInputError(f"model {self.model_id} has no files to load")


# --- the kinds ----------------------------------------------------------------------------------
class LayerSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | int
    """An upload or STAC source of the project (its layer name or id)."""
    layer: str | None = Field(default=None, pattern=NAME)
    """The window layer to write (default: the source's name)."""
    modality: str | None = None
    """Default: the source's modality."""
    period: str = "30d"
    method: Literal["first", "median", "least_cloudy"] = "first"
    max_periods: int | None = Field(default=None, ge=1, le=10_000)
    bands: list[str] | None = None
    datetime: str | None = None
    """Acquisition time of files that carry none."""
    nodata: float | None = None
    to_db: bool = False
    file_bands: list[str] | None = None


class MaterializePayload(WindowsPayload):
    layers: list[LayerSource] | None = Field(default=None, min_length=1)
    """Default: one layer per source of the project."""
    workers: int = Field(default=2, ge=1, le=64)
    ignore_errors: bool = True
    """Windows a source misses do not fail the job."""

    def check(self, session: Any, project_id: int | None) -> None:
        super().check(session, project_id)
        from sqlalchemy import select

        from earthplat.errors import SensorError
        from earthplat.sensors import get_modality
        from labeling.models import Layer

        rows = session.scalars(
            select(Layer).where(Layer.project_id == project_id, Layer.kind.in_(("upload", "stac")))
        ).all()
        known = {key for r in rows for key in (r.name, str(r.id))}
        for spec in self.layers or []:
            if str(spec.source) not in known:
                raise InvalidInputError(
                    f"project {project_id} has no source {spec.source!r} (known: "
                    f"{', '.join(sorted(known)) or 'none'})",
                    fix="upload a raster or register a STAC source first",
                )
            if spec.modality:
                try:
                    get_modality(spec.modality)
                except SensorError as e:
                    raise InvalidInputError(str(e)) from None


class FinetunePayload(WindowsPayload):
    config: str | dict[str, Any] | None = None
    """A shipped config's name (``earthplat/configs/finetune``), a whole config, or none: the
    task's default (``earthplat.tasks``)."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """Dotted keys, as ``run_finetune`` takes them (``trainer.max_steps``...)."""
    statuses: list[Literal[STATUSES]] = Field(default_factory=lambda: ["accepted"])  # type: ignore[valid-type]
    """Windows whose annotations are trained on."""
    layers: list[str] | None = None
    """Imagery layers to train on (default: all)."""
    name: str | None = Field(default=None, max_length=200)
    """The registered model's name (default: PROJECT-jobID)."""
    encoder: str | None = Field(default=None, pattern=ENCODER_ID)
    """What the encoder starts from (``GET /api/v1/encoders``): ``preset:NAME`` (a named size,
    random init) or ``model:ID`` (the encoder of a registered model of the project, which
    becomes the new model's parent). Default: the config's own backbone."""

    @model_validator(mode="after")
    def _one_encoder(self):
        if self.encoder is None:
            return self
        for key in self.overrides:
            parts = [p for p in key.split(".") if p != "init_args"]
            if parts[:2] == ["model", "backbone"] and (
                len(parts) == 2 or parts[2] in ("name", "encoder", "pretrained", "model")
            ):
                raise ValueError(
                    f"encoder and the override {key!r} both choose the encoder; give one"
                )
        return self

    def check(self, session: Any, project_id: int | None) -> None:
        super().check(session, project_id)
        if self.encoder is not None:
            from labeling.services.encoders import check_encoder

            check_encoder(session, encoder_id=self.encoder, project_id=project_id)
        if isinstance(self.config, str):
            from earthplat.configs import config_path
            from earthplat.errors import EarthplatError

            try:
                config_path("finetune", self.config)
            except EarthplatError as e:
                raise InvalidInputError(str(e)) from None


class ExportPayload(WindowsPayload):
    statuses: list[Literal[STATUSES]] = Field(default_factory=lambda: ["accepted"])  # type: ignore[valid-type]
    layers: list[str] | None = None


class InferencePayload(WindowsPayload, ModelRef):
    bbox: BBox | None = None
    """WGS84 (min lon, min lat, max lon, max lat): the windows meeting it."""
    layer: str | None = Field(default=None, pattern=NAME)
    """One input layer (its modality is read from the layer)."""
    allow_substitution: bool = False
    """Feed a sibling product (L2A to an L1C model); recorded in the outputs."""
    outputs: list[Literal["cog", "geojson", "parquet", "stac"]] | None = None
    batch_size: int = Field(default=8, ge=1, le=1024)

    def check(self, session: Any, project_id: int | None) -> None:
        super().check(session, project_id)
        self.check_model(session, project_id)


class EmbeddingsPayload(WindowsPayload, ModelRef):
    name: str | None = Field(default=None, pattern=NAME)
    """The index's name (default: job-ID)."""
    batch_size: int = Field(default=16, ge=1, le=1024)

    def check(self, session: Any, project_id: int | None) -> None:
        super().check(session, project_id)
        self.check_model(session, project_id)


class StepsPayload(Payload):
    steps: int = Field(default=5, ge=0, le=100_000)
    sleep_s: float = Field(default=0.1, ge=0, le=3600)
    fail_attempts: int = Field(default=0, ge=0, le=100)
    """Fail (transiently) on the first N attempts."""


PAYLOADS: dict[str, type[Payload]] = {
    "materialize": MaterializePayload,
    "finetune": FinetunePayload,
    "inference": InferencePayload,
    "embeddings": EmbeddingsPayload,
    "export_dataset": ExportPayload,
    "steps": StepsPayload,
}
"""Job kind -> its payload model (``api.jobs.handlers.HANDLERS`` has the same kinds)."""


def _message(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "payload"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def parse(kind: str, payload: dict[str, Any]) -> Payload:
    """The payload of a job of ``kind``, or ``InvalidInputError`` naming the bad fields."""
    if kind not in PAYLOADS:
        raise InvalidInputError(
            f"job kind {kind!r} has no payload schema", fix=f"use one of {', '.join(PAYLOADS)}"
        )
    try:
        return PAYLOADS[kind].model_validate(payload)
    except ValidationError as e:
        raise InvalidInputError(
            f"invalid {kind} payload: {_message(e)}",
            fix="see the job kind's payload fields in GET /api/v1/jobs/kinds or the docs",
        ) from None


def validate(session: Any, *, kind: str, payload: dict[str, Any], project_id: int | None) -> dict:
    """Check a submitted payload (shape, then the database); returns it normalised (defaults
    filled in), as the job row stores it."""
    parsed = parse(kind, payload)
    parsed.check(session, project_id)
    return parsed.model_dump(mode="json", exclude_none=True)
