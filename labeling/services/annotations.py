"""Annotations with optimistic concurrency.

Every write needs the window's claim (``labeling.services.claims``): a window claimed by someone
else refuses it with 423. An update names the version the client read and runs as one
conditional statement,
``UPDATE annotations SET ..., version = version + 1 WHERE id = :id AND version = :v``: of two
writers holding the same version exactly one matches a row, the other gets 409 and overwrites
nothing. This is race-free on PostgreSQL (the WHERE is re-checked after a concurrent commit) and
on SQLite (one writer at a time).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from earthplat.tasks import TASKS
from labeling.db import utcnow
from labeling.models import ORIGINS, Annotation, Project, WindowRecord
from labeling.services import claims
from labeling.services.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    TooLargeError,
)

EDITABLE = ("unlabeled", "in_progress", "rejected")
"""Window statuses in which annotations may change; editing moves the window to in_progress."""


@dataclass(frozen=True)
class Limits:
    """The largest annotation geometry accepted (``EARTHPLAT_ANNOTATION_MAX_*``)."""

    max_vertices: int = 10_000
    max_bytes: int = 1_000_000
    """Size of the geometry as compact GeoJSON text."""


def check_geometry(geometry: Any, limits: Limits | None = None) -> dict[str, Any]:
    """A valid, non-empty WGS84 GeoJSON geometry (normalised) within ``limits``; else
    ``InvalidInputError`` (422), or ``TooLargeError`` (413) for one over the byte limit."""
    from shapely import get_num_coordinates
    from shapely.geometry import mapping, shape
    from shapely.validation import explain_validity

    limits = limits or Limits()
    fix = "send a valid GeoJSON geometry (Point, LineString, Polygon, Multi*) in WGS84 lon/lat"
    if not isinstance(geometry, dict) or "type" not in geometry:
        raise InvalidInputError("geometry must be a GeoJSON geometry object", fix=fix)
    size = len(json.dumps(geometry, separators=(",", ":")))
    if size > limits.max_bytes:
        raise TooLargeError(
            f"the geometry is {size:,} bytes of GeoJSON; the limit is {limits.max_bytes:,}",
            fix="simplify it (fewer vertices, fewer decimals) or split it into several "
            "annotations; the limit is EARTHPLAT_ANNOTATION_MAX_BYTES",
        )
    try:
        geom = shape(geometry)
    except Exception as e:  # shapely raises many kinds on malformed input
        raise InvalidInputError(f"geometry is not valid GeoJSON ({e})", fix=fix) from None
    if geom.is_empty:
        raise InvalidInputError("geometry is empty", fix=fix)
    vertices = int(get_num_coordinates(geom))
    if vertices > limits.max_vertices:
        raise InvalidInputError(
            f"the geometry has {vertices:,} vertices; the limit is {limits.max_vertices:,}",
            fix="simplify it (e.g. shapely's simplify) or split it into several annotations; "
            "the limit is EARTHPLAT_ANNOTATION_MAX_VERTICES",
        )
    minx, miny, maxx, maxy = geom.bounds
    if not all(math.isfinite(v) for v in geom.bounds):
        raise InvalidInputError("geometry has non-finite coordinates", fix=fix)
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise InvalidInputError("geometry lies outside the lon/lat range", fix=fix)
    if not geom.is_valid:
        raise InvalidInputError(
            f"geometry is not valid: {explain_validity(geom)}",
            fix="repair it (no self-intersections, closed rings), e.g. shapely.make_valid",
        )
    return dict(mapping(geom))


def check_label(project: Project, *, class_value: int | None, value: float | None) -> None:
    """The class value is in the project's schema (class tasks) / a value is given (regression)."""
    if TASKS[project.task_type].class_task:
        schema = ", ".join(f"{c['value']} ({c['label']})" for c in project.classes) or "empty"
        if class_value is None:
            raise InvalidInputError(
                f"a {project.task_type} annotation needs a class_value; the class schema of "
                f"project {project.name!r} is: {schema}"
            )
        if class_value not in {c["value"] for c in project.classes}:
            raise InvalidInputError(
                f"class {class_value} is not in the class schema of project "
                f"{project.name!r}: {schema}",
                fix="use one of the schema's values, or add the class to the project first",
            )
    elif TASKS[project.task_type].target in ("value", "value_map") and value is None:
        raise InvalidInputError(f"a {project.task_type} annotation needs a numeric value")


def _editable_window(session: Session, window_id: int) -> WindowRecord:
    window = session.get(WindowRecord, window_id)
    if window is None:
        raise NotFoundError(f"no window {window_id}")
    if window.status not in EDITABLE:
        raise ConflictError(
            f"window {window_id} is {window.status}; its annotations cannot change",
            fix="a reviewer must reject it first" if window.status == "submitted" else None,
        )
    return window


def check_inside(geometry: dict[str, Any], window: WindowRecord) -> None:
    """The annotation touches its window's footprint (else it labels nothing there)."""
    from shapely.geometry import shape

    if not shape(geometry).intersects(shape(window.geometry)):
        raise InvalidInputError(
            f"the geometry lies outside window {window.id} ({window.name})",
            fix="draw inside the window, or annotate the window that covers the place",
        )


def _touch_window(session: Session, window_id: int) -> None:
    session.execute(
        update(WindowRecord)
        .where(WindowRecord.id == window_id, WindowRecord.status.in_(("unlabeled", "rejected")))
        .values(status="in_progress", updated_at=utcnow())
    )


def create_annotation(
    session: Session,
    *,
    project: Project,
    window_id: int,
    author_id: int,
    geometry: Any,
    class_value: int | None = None,
    value: float | None = None,
    properties: dict[str, Any] | None = None,
    limits: Limits | None = None,
    lock_minutes: float = 30.0,
    origin: str = "human",
    model_id: int | None = None,
) -> Annotation:
    """A new annotation on a window the author may write to (claimed by them or free, which
    claims it). ``origin="model"`` marks a pre-label made from ``model_id``'s prediction."""
    if origin not in ORIGINS:
        raise InvalidInputError(f"origin {origin!r} is not one of {', '.join(ORIGINS)}")
    geometry = check_geometry(geometry, limits)
    check_label(project, class_value=class_value, value=value)
    window = _editable_window(session, window_id)
    check_inside(geometry, window)
    claims.require_claim(
        session, window=window, user_id=author_id, minutes=lock_minutes, action="annotate"
    )
    row = Annotation(
        project_id=window.project_id,
        window_id=window_id,
        geometry=geometry,
        class_value=class_value,
        value=value,
        properties=properties or {},
        author_id=author_id,
        origin=origin,
        model_id=model_id,
        version=1,
    )
    session.add(row)
    _touch_window(session, window_id)
    session.commit()
    return row


def get_annotation(session: Session, *, annotation_id: int) -> Annotation:
    row = session.get(Annotation, annotation_id)
    if row is None:
        raise NotFoundError(f"no annotation {annotation_id}")
    return row


def list_annotations(
    session: Session, *, window_id: int | None = None, project_id: int | None = None
) -> list[Annotation]:
    query = select(Annotation).order_by(Annotation.id)
    if window_id is not None:
        query = query.where(Annotation.window_id == window_id)
    if project_id is not None:
        query = query.where(Annotation.project_id == project_id)
    return list(session.scalars(query))


def _stale(session: Session, annotation_id: int, version: int) -> ConflictError:
    current = session.scalar(select(Annotation.version).where(Annotation.id == annotation_id))
    if current is None:
        return NotFoundError(f"no annotation {annotation_id}")
    return ConflictError(
        f"annotation {annotation_id} is at version {current}, not {version}: someone else "
        "changed it since you read it",
        fix="re-read the annotation, re-apply your change and send its current version",
    )


def update_annotation(
    session: Session,
    *,
    project: Project,
    annotation_id: int,
    version: int,
    author_id: int,
    changes: dict[str, Any],
    limits: Limits | None = None,
    lock_minutes: float = 30.0,
) -> Annotation:
    """Apply ``changes`` (geometry, class_value, value, properties) if the annotation is still at
    ``version``; 409 otherwise. A person changing a pre-label's geometry or label marks it
    ``edited``."""
    current = get_annotation(session, annotation_id=annotation_id)
    values: dict[str, Any] = {}
    if "geometry" in changes and changes["geometry"] is not None:
        values["geometry"] = check_geometry(changes["geometry"], limits)
    if "properties" in changes and changes["properties"] is not None:
        values["properties"] = changes["properties"]
    for key in ("class_value", "value"):
        if key in changes:
            values[key] = changes[key]
    check_label(
        project,
        class_value=values.get("class_value", current.class_value),
        value=values.get("value", current.value),
    )
    window = _editable_window(session, current.window_id)
    if "geometry" in values:
        check_inside(values["geometry"], window)
    if current.origin == "model" and {"geometry", "class_value", "value"} & set(values):
        values["edited"] = True
    claims.require_claim(
        session, window=window, user_id=author_id, minutes=lock_minutes, action="annotate"
    )
    result = session.execute(
        update(Annotation)
        .where(Annotation.id == annotation_id, Annotation.version == version)
        .values(**values, author_id=author_id, version=Annotation.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        raise _stale(session, annotation_id, version)
    _touch_window(session, current.window_id)
    session.commit()
    session.refresh(current)
    return current


def delete_annotation(
    session: Session,
    *,
    annotation_id: int,
    version: int,
    user_id: int,
    lock_minutes: float = 30.0,
) -> None:
    current = get_annotation(session, annotation_id=annotation_id)
    window = _editable_window(session, current.window_id)
    claims.require_claim(
        session, window=window, user_id=user_id, minutes=lock_minutes, action="annotate"
    )
    result = session.execute(
        delete(Annotation)
        .where(Annotation.id == annotation_id, Annotation.version == version)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        raise _stale(session, annotation_id, version)
    session.commit()
