"""Similar windows: nearest neighbours in the project's latest embedding index (written by an
``embeddings`` job under ``DATA_DIR/projects/ID/embeddings/NAME/``)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api import auth
from api.deps import CurrentUser, SessionDep, SettingsDep
from api.errors import NotFoundError
from labeling.models import WindowRecord

router = APIRouter(tags=["similarity"])


class SimilarWindow(BaseModel):
    window_id: int
    name: str
    score: float
    """Cosine similarity of the embeddings, in [-1, 1]."""


def embeddings_root(settings, project_id: int):
    return settings.project_dir(project_id) / "embeddings"


@router.get(
    "/projects/{project_id}/windows/{window_id}/similar", response_model=list[SimilarWindow]
)
def similar_windows(
    project_id: int,
    window_id: int,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    k: int = Query(10, ge=1, le=1000),
    index: str | None = Query(None, pattern=r"^[A-Za-z0-9_.\-]+$", description="Index name"),
) -> list[SimilarWindow]:
    """The ``k`` windows whose embeddings are closest (cosine) to this window's, best first;
    the window itself is never among them."""
    from labeling.similarity import EmbeddingIndex, latest_index

    auth.require(session, user=user, project_id=project_id, permission="read")
    row = session.get(WindowRecord, window_id)
    if row is None or row.project_id != project_id:
        raise NotFoundError(f"project {project_id} has no window {window_id}")
    root = embeddings_root(settings, project_id)
    path = root / index if index else latest_index(root)
    if path is None or not (path / "index.json").is_file():
        raise NotFoundError(
            f"project {project_id} has no embedding index" + (f" {index!r}" if index else ""),
            fix="run an embeddings job (POST /api/v1/projects/ID/jobs kind=embeddings)",
        )
    idx = EmbeddingIndex.load(path)
    try:
        matches = idx.query(window_id=window_id, k=k)
    except KeyError:
        raise NotFoundError(
            f"window {window_id} is not in the embedding index {path.name!r}",
            fix="re-run the embeddings job after adding windows",
        ) from None
    return [SimilarWindow(window_id=int(m.id), name=str(m.name), score=m.score) for m in matches]
