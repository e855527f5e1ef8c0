"""The model registry (read-only over the API; fine-tuning jobs register models): listings
with what a registry page shows (base encoder, training data, test metrics), and two models
compared."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from api import auth
from api.deps import MAX_ID, CurrentUser, PathId, SessionDep
from api.schemas.annotations import ModelPublic
from api.schemas.models import ModelComparison
from labeling.models import ModelEntry, ProjectMember
from labeling.services import model_card, registry

router = APIRouter(tags=["models"])


def _public(entries: list[ModelEntry], cards: list[dict]) -> list[ModelPublic]:
    fields = ModelPublic.model_fields
    return [
        ModelPublic.model_validate(entry).model_copy(
            update={k: v for k, v in card.items() if k in fields}
        )
        for entry, card in zip(entries, cards, strict=True)
    ]


def _readable(session, user, model_id: int) -> ModelEntry:
    entry = registry.get_model(session, model_id=model_id)
    if entry.project_id is not None:
        auth.require(session, user=user, project_id=entry.project_id, permission="read")
    return entry


@router.get("/models", response_model=list[ModelPublic])
def list_models(
    session: SessionDep,
    user: CurrentUser,
    project_id: int | None = Query(None, ge=1, le=MAX_ID),
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> list[ModelPublic]:
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
    return _public(models, model_card.cards(session, models))


@router.get("/models/compare", response_model=ModelComparison)
def compare_models(
    session: SessionDep,
    user: CurrentUser,
    a: int = Query(ge=1, le=MAX_ID, description="A model id"),
    b: int = Query(ge=1, le=MAX_ID, description="Another model id"),
) -> dict:
    """Two models of one task type side by side: the metrics both have, with the better of
    each (higher, or lower for loss/error/mae/rmse), and the windows each was tested on."""
    entries = [_readable(session, user, a), _readable(session, user, b)]
    cards = model_card.cards(session, entries)
    pa, pb = _public(entries, cards)
    return {"a": pa, "b": pb, **model_card.compare(*entries, *cards)}


@router.get("/models/{model_id}", response_model=ModelPublic)
def read_model(model_id: PathId, session: SessionDep, user: CurrentUser) -> ModelPublic:
    entries = [_readable(session, user, model_id)]
    return _public(entries, model_card.cards(session, entries))[0]
