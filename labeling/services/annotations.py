"""Annotations with optimistic concurrency.

Every write needs the window's claim (``labeling.services.claims``): a window claimed by someone
else refuses it with 423. An update names the version the client read and runs as one
conditional statement,
``UPDATE annotations SET ..., version = version + 1 WHERE id = :id AND version = :v``: of two
writers holding the same version exactly one matches a row, the other gets 409 and overwrites
nothing. This is race-free on PostgreSQL (the WHERE is re-checked after a concurrent commit) and
on SQLite (one writer at a time).

An annotation is a drawn shape (``geometry``: WGS84 GeoJSON) or a painted mask (``mask``: RLE
pixels on its window's grid, ``labeling.masks``). A mask's ``geometry`` is derived from it (the
outline of its pixels) and never taken from the client: when a request carries both, the mask
wins. Masks are bounded by the byte limit, not the vertex limit (their outline follows pixel
edges). Merge (one class, one window: union of shapes or of pixels) and split (a polygon cut by
a line) change several rows in one transaction, each row guarded by its version like an update.
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
        why = explain_validity(geom)
        fix = next(
            (f for reason, f in _VALIDITY_FIXES.items() if why.startswith(reason)),
            "repair it (no self-intersections, closed rings), e.g. shapely.make_valid",
        )
        raise InvalidInputError(f"geometry is not valid: {why}", fix=fix)
    return dict(mapping(geom))


_VALIDITY_FIXES = {
    "Hole lies outside shell": "every hole (interior ring) must lie inside its polygon's outer "
    "ring: draw the hole inside the shape, or make it a polygon of its own",
    "Holes are nested": "a hole lies inside another hole: remove the inner one, or make it a "
    "polygon of its own",
    "Interior is disconnected": "a hole cuts the polygon in pieces: draw the pieces as separate "
    "polygons (a MultiPolygon)",
    "Nested shells": "a part of the MultiPolygon lies inside another part: make it a hole of the "
    "outer part, or a separate annotation",
    "Ring Self-intersection": "a ring touches or crosses itself: redraw it so its edges do not "
    "cross, e.g. shapely.make_valid",
    "Self-intersection": "edges cross (a bow-tie, a hole crossing its outer ring, or overlapping "
    "MultiPolygon parts): redraw it, merge overlapping parts, or repair with shapely.make_valid",
}
"""Fixes for shapely's ``explain_validity`` reasons, most specific first."""


def check_label(project: Project, *, class_value: int | None, value: float | None) -> None:
    """The class value is in the project's schema (class tasks) / a value is given (regression)."""
    if TASKS[project.task_type].class_task:
        schema = ", ".join(f"{c['value']} ({c['label']})" for c in project.classes) or "empty"
        if class_value is None:
            raise InvalidInputError(
                f"a {project.task_type} annotation needs a class_value; the class schema of "
                f"project {project.name!r} is: {schema}",
                fix="send class_value: use one of the schema's values",
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


def check_painted(
    project: Project, window: WindowRecord, mask: Any, limits: Limits | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(outline geometry, canonical mask) of a painted mask on ``window``'s grid; 422 when the
    project's task does not label per-pixel classes or the mask does not fit the window."""
    from labeling import masks

    masks.check_task(project.task_type)
    grid = window.to_window()
    max_bytes = (limits or Limits()).max_bytes
    checked = masks.check_mask(mask, grid, max_bytes=max_bytes)
    return masks.outline(checked, grid, max_bytes=max_bytes), checked


def create_annotation(
    session: Session,
    *,
    project: Project,
    window_id: int,
    author_id: int,
    geometry: Any = None,
    mask: Any = None,
    class_value: int | None = None,
    value: float | None = None,
    properties: dict[str, Any] | None = None,
    limits: Limits | None = None,
    lock_minutes: float = 30.0,
    origin: str = "human",
    model_id: int | None = None,
) -> Annotation:
    """A new annotation on a window the author may write to (claimed by them or free, which
    claims it): a drawn ``geometry`` or a painted ``mask`` (whose geometry is derived; a
    ``geometry`` sent with it is ignored). ``origin="model"`` marks a pre-label made from
    ``model_id``'s prediction."""
    if origin not in ORIGINS:
        raise InvalidInputError(f"origin {origin!r} is not one of {', '.join(ORIGINS)}")
    if mask is None:
        if geometry is None:
            raise InvalidInputError(
                "an annotation needs a geometry or a mask",
                fix="send 'geometry' (GeoJSON, WGS84) for a drawn shape, or 'mask' (RLE on "
                "the window's grid) for painted pixels",
            )
        geometry = check_geometry(geometry, limits)
    check_label(project, class_value=class_value, value=value)
    window = _editable_window(session, window_id)
    if mask is not None:
        geometry, mask = check_painted(project, window, mask, limits)
    else:
        check_inside(geometry, window)
    claims.require_claim(
        session, window=window, user_id=author_id, minutes=lock_minutes, action="annotate"
    )
    row = Annotation(
        project_id=window.project_id,
        window_id=window_id,
        geometry=geometry,
        mask=mask,
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
    """Apply ``changes`` (geometry or mask, class_value, value, properties) if the annotation is
    still at ``version``; 409 otherwise. A mask replaces the pixels and the derived geometry (a
    geometry sent with it is ignored); a painted annotation's geometry changes only through its
    mask. A person changing a pre-label's geometry, pixels or label marks it ``edited``."""
    current = get_annotation(session, annotation_id=annotation_id)
    values: dict[str, Any] = {}
    new_mask = changes.get("mask")
    if new_mask is None and changes.get("geometry") is not None:
        if current.mask is not None:
            raise InvalidInputError(
                f"annotation {annotation_id} is a painted mask; its geometry is the outline "
                "of its pixels",
                fix="send 'mask' with the new pixels, or delete it and draw a shape instead",
            )
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
    if new_mask is not None:
        values["geometry"], values["mask"] = check_painted(project, window, new_mask, limits)
    elif "geometry" in values:
        check_inside(values["geometry"], window)
    claims.require_claim(
        session, window=window, user_id=author_id, minutes=lock_minutes, action="annotate"
    )
    _apply(session, current, version=version, author_id=author_id, values=values)
    _touch_window(session, current.window_id)
    session.commit()
    session.refresh(current)
    return current


def _apply(
    session: Session, row: Annotation, *, version: int, author_id: int, values: dict[str, Any]
) -> None:
    """The conditional update of one row (its version must still be ``version``), uncommitted;
    409 (after a rollback) when someone changed it since."""
    if row.origin == "model" and {"geometry", "mask", "class_value", "value"} & set(values):
        values = {**values, "edited": True}
    result = session.execute(
        update(Annotation)
        .where(Annotation.id == row.id, Annotation.version == version)
        .values(**values, author_id=author_id, version=Annotation.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        raise _stale(session, row.id, version)


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
    _delete_at(session, current, version)
    session.commit()


def _delete_at(session: Session, row: Annotation, version: int) -> None:
    """The conditional delete of one row at ``version``, uncommitted; 409 when stale."""
    result = session.execute(
        delete(Annotation)
        .where(Annotation.id == row.id, Annotation.version == version)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        raise _stale(session, row.id, version)
