"""The model registry: fine-tuning runs, their configs, metrics and artifacts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labeling.models import ModelEntry
from labeling.services.errors import NotFoundError


def register_model(
    session: Session,
    *,
    name: str,
    project_id: int | None = None,
    task_type: str | None = None,
    run_dir: str | None = None,
    model_dir: str | None = None,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    artifacts: dict[str, Any] | None = None,
    parent_id: int | None = None,
    job_id: int | None = None,
    created_by: int | None = None,
    commit: bool = True,
) -> ModelEntry:
    """Add a model entry (called by the fine-tuning job when a run finishes)."""
    if parent_id is not None:
        get_model(session, model_id=parent_id)
    entry = ModelEntry(
        name=name,
        project_id=project_id,
        task_type=task_type,
        run_dir=run_dir,
        model_dir=model_dir,
        config=config or {},
        metrics=metrics or {},
        artifacts=artifacts or {},
        parent_id=parent_id,
        job_id=job_id,
        created_by=created_by,
    )
    session.add(entry)
    session.flush()
    if commit:
        session.commit()
    return entry


def get_model(session: Session, *, model_id: int) -> ModelEntry:
    entry = session.get(ModelEntry, model_id)
    if entry is None:
        raise NotFoundError(f"no model {model_id}", fix="list models at GET /api/v1/models")
    return entry


def list_models(
    session: Session, *, project_ids: list[int] | None, offset: int = 0, limit: int = 100
) -> list[ModelEntry]:
    """Models of the given projects plus project-less ones (``None``: all models)."""
    query = select(ModelEntry).order_by(ModelEntry.id).offset(offset).limit(limit)
    if project_ids is not None:
        query = query.where(
            ModelEntry.project_id.in_(project_ids) | ModelEntry.project_id.is_(None)
        )
    return list(session.scalars(query))
