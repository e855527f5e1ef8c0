"""Annotation validation and optimistic concurrency (labeling.services.annotations)."""

from __future__ import annotations

import pytest

from labeling.services import annotations as svc
from labeling.services.errors import ConflictError, InvalidInputError

POINT = {"type": "Point", "coordinates": [-0.76, 38.1]}


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}, "valid"),
        ({"type": "Point", "coordinates": [181, 0]}, "lon/lat"),
        ({"type": "Point", "coordinates": [float("nan"), 0]}, "finite"),
        ({"type": "LineString", "coordinates": []}, "empty"),
        ({"type": "Hexagon", "coordinates": [0, 0]}, "GeoJSON"),
        ([0, 0], "GeoJSON geometry object"),
    ],
)
def test_bad_geometries(geometry, message):
    with pytest.raises(InvalidInputError, match=message) as info:
        svc.check_geometry(geometry)
    assert info.value.status == 422 and info.value.fix


def test_good_geometry_is_normalised():
    out = svc.check_geometry({"type": "Point", "coordinates": (-0.76, 38.1)})
    assert out == {"type": "Point", "coordinates": (-0.76, 38.1)}


def test_class_schema(project):
    svc.check_label(project, class_value=3, value=None)
    with pytest.raises(InvalidInputError, match=r"class 1 is not .* 0 \(land\), 3 \(water\)"):
        svc.check_label(project, class_value=1, value=None)
    with pytest.raises(InvalidInputError, match="needs a class_value"):
        svc.check_label(project, class_value=None, value=None)
    project.task_type = "regression"
    with pytest.raises(InvalidInputError, match="numeric value"):
        svc.check_label(project, class_value=None, value=None)


def test_versions(session, project, windows):
    from shapely.geometry import mapping, shape

    w = windows[0]
    with pytest.raises(InvalidInputError, match="outside window"):
        svc.create_annotation(
            session,
            project=project,
            window_id=w.id,
            author_id=1,
            geometry={"type": "Point", "coordinates": [10.0, 50.0]},
            class_value=0,
        )
    inside = dict(mapping(shape(w.geometry).centroid))
    a = svc.create_annotation(
        session, project=project, window_id=w.id, author_id=1, geometry=inside, class_value=0
    )
    assert a.version == 1 and session.get(type(w), w.id).status == "in_progress"
    b = svc.update_annotation(
        session,
        project=project,
        annotation_id=a.id,
        version=1,
        author_id=1,
        changes={"class_value": 3},
    )
    assert b.version == 2 and b.class_value == 3
    with pytest.raises(ConflictError, match="version 2, not 1"):
        svc.update_annotation(
            session,
            project=project,
            annotation_id=a.id,
            version=1,
            author_id=1,
            changes={"class_value": 0},
        )
    assert svc.get_annotation(session, annotation_id=a.id).class_value == 3
    with pytest.raises(ConflictError):
        svc.delete_annotation(session, annotation_id=a.id, version=1, user_id=1)
    svc.delete_annotation(session, annotation_id=a.id, version=2, user_id=1)
    assert svc.list_annotations(session, window_id=w.id) == []
