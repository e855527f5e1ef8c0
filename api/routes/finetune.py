"""Planning a fine-tune: the encoders it can start from, and how long its training will take.

``GET /encoders`` lists the encoder presets (asked of ``earthplat.nn.registry``, never copied),
the registered models whose export holds an earthplat encoder and the published OlmoEarth
checkpoints under the data dir (``DATA_DIR/encoders/NAME``; those that do not load are listed
with their error, ``usable: false``); an item's ``id`` is what the ``finetune`` job's
``encoder`` field takes. ``GET /projects/ID/finetune/estimate`` turns
the throughput the platform's finished fine-tunes measured (``api.jobs.throughput``) into
seconds for a planned run.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from api import auth
from api.deps import MAX_ID, CurrentUser, PathId, SessionDep, SettingsDep
from api.jobs import throughput
from api.schemas.encoders import EncoderPublic
from labeling.models import Project, ProjectMember
from labeling.services import encoders

router = APIRouter(tags=["fine-tuning"])


class EstimatePublic(BaseModel):
    samples_per_s: float | None
    """Median measured training samples/s with this encoder (``None``: never measured)."""
    seconds: float | None
    """``steps * batch_size / samples_per_s``: the training loop, without setup."""
    based_on: list[int]
    """The fine-tune jobs whose measurements it uses."""
    note: str


@router.get("/encoders", response_model=list[EncoderPublic])
def list_encoders(
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    project_id: int | None = Query(None, ge=1, le=MAX_ID),
) -> list[dict[str, Any]]:
    """Encoders a fine-tune can start from: every preset, then the registered models (of the
    project and project-less ones; without ``project_id``, of every project the caller reads)
    that hold an earthplat encoder, then the published checkpoints of the encoder roots."""
    if project_id is not None:
        auth.require(session, user=user, project_id=project_id, permission="read")
        sensors = list(session.get(Project, project_id).sensors or [])
        ids: list[int] | None = [project_id]
    else:
        sensors = []
        ids = None
        if not user.is_admin:
            query = select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)
            ids = list(session.scalars(query))
    presets = encoders.preset_encoders(sensors or None)
    models = encoders.model_encoders(session, project_ids=ids)
    return presets + models + encoders.published_encoders(encoders.roots_of(settings))


@router.get("/projects/{project_id}/finetune/estimate", response_model=EstimatePublic)
def estimate_finetune(
    project_id: PathId,
    session: SessionDep,
    user: CurrentUser,
    encoder: str = Query(
        pattern=encoders.ENCODER_ID, description="preset:NAME, model:ID or olmoearth:NAME"
    ),
    steps: int = Query(ge=1, le=10_000_000),
    batch_size: int = Query(ge=1, le=65_536),
) -> dict[str, Any]:
    """How long ``steps`` training steps of ``batch_size`` samples take with ``encoder``:
    the median throughput of the platform's succeeded fine-tunes with it (any project)."""
    auth.require(session, user=user, project_id=project_id, permission="read")
    return throughput.estimate(session, encoder=encoder, steps=steps, batch_size=batch_size)
