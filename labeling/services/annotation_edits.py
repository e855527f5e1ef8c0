"""Merge and split of annotations: several rows changed in one transaction, each guarded by its
version like an update (``labeling.services.annotations``): merge joins annotations of one class
on one window (the union of polygons, or of painted pixels), split cuts a polygon along a line.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from labeling.models import Annotation
from labeling.services import claims
from labeling.services.annotations import (
    Limits,
    _apply,
    _delete_at,
    _editable_window,
    _touch_window,
    check_geometry,
    get_annotation,
)
from labeling.services.errors import InvalidInputError

POLYGONAL = ("Polygon", "MultiPolygon")
"""The geometry types that merge and split."""


def merge_annotations(
    session: Session,
    *,
    ids: list[int],
    versions: dict[int, int],
    author_id: int,
    limits: Limits | None = None,
    lock_minutes: float = 30.0,
) -> Annotation:
    """Merge annotations of one class on one window into the first of ``ids``: polygons into
    their union (shapely), painted masks into the union of their pixels; the others are
    deleted, all in one transaction. Every annotation must still be at its ``versions`` entry
    (409 otherwise, nothing changed). Human and model-made annotations merge alike; the result
    keeps the first one's provenance (a model-made one becomes ``edited``)."""
    from shapely import unary_union
    from shapely.geometry import mapping, shape

    from labeling import masks

    if len(set(ids)) != len(ids) or len(ids) < 2:
        raise InvalidInputError(
            f"merge needs two or more distinct annotation ids, not {ids}",
            fix="list each annotation to merge once",
        )
    missing = [i for i in ids if i not in versions]
    if missing:
        raise InvalidInputError(
            f"no version given for annotation(s) {missing}",
            fix="send 'versions': {id: the version you read} for every annotation merged",
        )
    rows = [get_annotation(session, annotation_id=i) for i in ids]
    if len({r.window_id for r in rows}) != 1:
        raise InvalidInputError(
            "the annotations lie on different windows; only one window's annotations merge",
            fix="merge the annotations of each window separately",
        )
    window = _editable_window(session, rows[0].window_id)
    classes = {r.class_value for r in rows}
    if len(classes) != 1 or None in classes:
        raise InvalidInputError(
            f"the annotations have classes {sorted(classes, key=str)}; only one class merges",
            fix="relabel them to one class first, or merge each class separately",
        )
    painted = [r.mask is not None for r in rows]
    if any(painted) and not all(painted):
        raise InvalidInputError(
            "painted masks and drawn polygons do not merge with each other",
            fix="merge masks with masks and polygons with polygons (or paint over the polygon)",
        )
    if not any(painted):
        kinds = sorted({r.geometry.get("type") for r in rows} - set(POLYGONAL))
        if kinds:
            raise InvalidInputError(
                f"only polygons merge; the selection holds {', '.join(kinds)}",
                fix="select Polygon or MultiPolygon annotations only",
            )
    if all(painted):
        mask = masks.union([r.mask for r in rows])
        max_bytes = (limits or Limits()).max_bytes
        values = {
            "mask": mask,
            "geometry": masks.outline(mask, window.to_window(), max_bytes=max_bytes),
        }
    else:
        merged = unary_union([shape(r.geometry) for r in rows])
        values = {"geometry": check_geometry(dict(mapping(merged)), limits)}
    claims.require_claim(
        session, window=window, user_id=author_id, minutes=lock_minutes, action="annotate"
    )
    keep, *gone = rows
    _apply(session, keep, version=versions[keep.id], author_id=author_id, values=values)
    for row in gone:
        _delete_at(session, row, versions[row.id])
    _touch_window(session, window.id)
    session.commit()
    session.refresh(keep)
    return keep


def split_annotation(
    session: Session,
    *,
    annotation_id: int,
    version: int,
    line: Any,
    author_id: int,
    limits: Limits | None = None,
    lock_minutes: float = 30.0,
) -> list[Annotation]:
    """Cut a polygon annotation along a WGS84 ``line`` (a LineString crossing it): the largest
    part stays in this annotation (version + 1), each other part becomes a new annotation of
    the same class, label, properties and provenance, in one transaction. Returns all parts,
    the kept one first."""
    from shapely.geometry import mapping, shape
    from shapely.ops import split

    current = get_annotation(session, annotation_id=annotation_id)
    if current.mask is not None:
        raise InvalidInputError(
            f"annotation {annotation_id} is a painted mask; split cuts drawn polygons",
            fix="erase a line of pixels with the eraser, then save each region as its own mask",
        )
    if current.geometry.get("type") not in POLYGONAL:
        raise InvalidInputError(
            f"annotation {annotation_id} is a {current.geometry.get('type')}; only polygons split",
            fix="split a Polygon or MultiPolygon annotation",
        )
    cut = check_geometry(line, limits)
    if cut["type"] != "LineString":
        raise InvalidInputError(
            f"the cut must be a LineString, not a {cut['type']}",
            fix="send 'line': {'type': 'LineString', 'coordinates': [[lon, lat], ...]}",
        )
    geom, blade = shape(current.geometry), shape(cut)
    polygons = [geom] if geom.geom_type == "Polygon" else list(geom.geoms)
    try:
        parts = [p for poly in polygons for p in split(poly, blade).geoms if p.area > 0]
    except Exception as e:  # GEOS topology errors on degenerate cuts
        raise InvalidInputError(
            f"annotation {annotation_id} cannot be cut along this line ({e})",
            fix="draw a simple line across the polygon, starting and ending outside it",
        ) from None
    if len(parts) < 2:
        raise InvalidInputError(
            f"the line does not cut annotation {annotation_id} in two",
            fix="draw the line across the polygon, starting and ending outside it",
        )
    parts.sort(key=lambda p: p.area, reverse=True)
    geometries = [check_geometry(dict(mapping(p)), limits) for p in parts]
    window = _editable_window(session, current.window_id)
    claims.require_claim(
        session, window=window, user_id=author_id, minutes=lock_minutes, action="annotate"
    )
    _apply(
        session,
        current,
        version=version,
        author_id=author_id,
        values={"geometry": geometries[0]},
    )
    new = [
        Annotation(
            project_id=current.project_id,
            window_id=current.window_id,
            geometry=g,
            class_value=current.class_value,
            value=current.value,
            properties=dict(current.properties or {}),
            author_id=author_id,
            origin=current.origin,
            model_id=current.model_id,
            edited=current.origin == "model",
            version=1,
        )
        for g in geometries[1:]
    ]
    session.add_all(new)
    _touch_window(session, current.window_id)
    session.commit()
    session.refresh(current)
    return [current, *new]
