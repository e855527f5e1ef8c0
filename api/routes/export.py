"""Exports of a project's annotations: GeoJSON (WGS84 FeatureCollection) and GeoParquet, each
annotation with its provenance (``origin`` human or model, ``model_id``, ``edited``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import select

from api import auth
from api.deps import CurrentUser, PathId, SessionDep
from labeling.models import Annotation, User, WindowRecord
from labeling.services.projects import get_project

router = APIRouter(tags=["export"])
Status = Query(
    None,
    pattern="^(unlabeled|in_progress|submitted|accepted|rejected)$",
    description="Only annotations of windows in this status (e.g. accepted)",
)


def _features(session, project_id: PathId, status: str | None) -> list[dict]:
    from labeling.export import annotation_feature

    query = (
        select(Annotation, WindowRecord.name, User.name)
        .join(WindowRecord, WindowRecord.id == Annotation.window_id)
        .outerjoin(User, User.id == Annotation.author_id)
        .where(Annotation.project_id == project_id)
        .order_by(Annotation.id)
    )
    if status:
        query = query.where(WindowRecord.status == status)
    return [
        annotation_feature(row, window=window, author=author)
        for row, window, author in session.execute(query)
    ]


@router.get("/projects/{project_id}/export/geojson")
def export_geojson(
    project_id: PathId, session: SessionDep, user: CurrentUser, status: str | None = Status
) -> dict:
    """The project's annotations as an RFC 7946 FeatureCollection (WGS84)."""
    from labeling.export import export_geojson as to_geojson

    auth.require(session, user=user, project_id=project_id, permission="read")
    project = get_project(session, project_id=project_id)
    return to_geojson(_features(session, project_id, status), project.classes)


@router.get(
    "/projects/{project_id}/export/geoparquet",
    response_class=Response,
    responses={200: {"content": {"application/vnd.apache.parquet": {}}}},
)
def export_geoparquet(
    project_id: PathId, session: SessionDep, user: CurrentUser, status: str | None = Status
) -> Response:
    """The project's annotations as a GeoParquet file (EPSG:4326)."""
    from labeling.export import export_geoparquet as to_geoparquet

    auth.require(session, user=user, project_id=project_id, permission="read")
    project = get_project(session, project_id=project_id)
    features = _features(session, project_id, status)
    with tempfile.TemporaryDirectory() as tmp:
        path = to_geoparquet(features, project.classes, Path(tmp) / "annotations.parquet")
        data = Path(path).read_bytes()
    return Response(
        data,
        media_type="application/vnd.apache.parquet",
        headers={"Content-Disposition": f'attachment; filename="project-{project_id}.parquet"'},
    )
