"""The model registry (read-only over the API; fine-tuning jobs register models)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from api import auth
from api.deps import MAX_ID, CurrentUser, PathId, SessionDep
from api.schemas.annotations import ModelPublic
from labeling.models import ModelEntry, ProjectMember
from labeling.services import registry

router = APIRouter(tags=["models"])


@router.get("/models", response_model=list[ModelPublic])
def list_models(
    session: SessionDep,
    user: CurrentUser,
    project_id: int | None = Query(None, ge=1, le=MAX_ID),
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> list[ModelEntry]:
    """Models of the caller's projects (all for platform admins), optionally of one project."""
    if project_id is not None:
        auth.require(session, user=user, project_id=project_id, permission="read")
        ids = [project_id]
    elif user.is_admin:
        ids = None
    else:
        ids = list(
            session.scalars(
                select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)
            )
        )
    models = registry.list_models(session, project_ids=ids, offset=offset, limit=limit)
    if project_id is not None:
        models = [m for m in models if m.project_id == project_id]
    return models


@router.get("/models/{model_id}", response_model=ModelPublic)
def read_model(model_id: PathId, session: SessionDep, user: CurrentUser) -> ModelEntry:
    entry = registry.get_model(session, model_id=model_id)
    if entry.project_id is not None:
        auth.require(session, user=user, project_id=entry.project_id, permission="read")
    return entry
