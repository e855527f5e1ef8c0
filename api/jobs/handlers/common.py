"""What several handlers look up: a project's dataset and windows, a model's files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.jobs.context import JobContext, PermanentJobError


def project_windows(ctx: JobContext, params: Any) -> tuple[str, list]:
    """(dataset root, window rows) of the payload's ``dataset``, limited to its ``windows`` ids
    when given. Rows are detached (safe after the session closes)."""
    from sqlalchemy import select

    from labeling.models import DatasetRecord, WindowRecord

    name = params.dataset
    with ctx.session_factory() as s:
        dataset = s.scalar(
            select(DatasetRecord).where(
                DatasetRecord.project_id == ctx.project_id, DatasetRecord.name == name
            )
        )
        if dataset is None:
            raise PermanentJobError(
                f"project {ctx.project_id} has no dataset {name!r}; create windows first"
            )
        query = select(WindowRecord).where(WindowRecord.dataset_id == dataset.id)
        if params.windows:
            query = query.where(WindowRecord.id.in_(params.windows))
        rows = list(s.scalars(query.order_by(WindowRecord.id)))
        s.expunge_all()
    if not rows:
        raise PermanentJobError(f"dataset {name!r} of project {ctx.project_id} has no such windows")
    return dataset.path, rows


def model_path(ctx: JobContext, params: Any) -> tuple[Path, Any]:
    """The model to load: ``model_id`` (a registry entry of the project: its exported model,
    else its run dir) or ``model_path`` (a path inside the data dir). Returns (path, entry)."""
    if params.model_id is not None:
        from labeling.models import ModelEntry

        with ctx.session_factory() as s:
            entry = s.get(ModelEntry, params.model_id)
            if entry is None or entry.project_id not in (None, ctx.project_id):
                raise PermanentJobError(f"no model {params.model_id} in project {ctx.project_id}")
            s.expunge(entry)
        path = entry.model_dir or entry.run_dir
        if not path:
            raise PermanentJobError(f"model {entry.id} has neither a model_dir nor a run_dir")
        return Path(path), entry
    if params.model_path:
        path = Path(params.model_path)
        path = (ctx.data_dir / path if not path.is_absolute() else path).resolve()
        if not path.is_relative_to(ctx.data_dir):
            raise PermanentJobError(
                f"model_path {path} is outside the data dir {ctx.data_dir}; register the model "
                "or copy it under the data dir"
            )
        if not path.exists():
            raise PermanentJobError(f"model_path {path} does not exist")
        return path, None
    raise PermanentJobError("the payload needs model_id (a registered model) or model_path")
