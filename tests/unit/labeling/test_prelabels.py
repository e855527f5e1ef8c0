"""Pre-labels: vectorising class rasters (areas, slivers, nodata, background, the vertex
limit) and turning an inference job's outputs into model-made annotations (replacing unedited
ones, claims, each task), on a real window grid with synthetic outputs written here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shapely.geometry import shape

from labeling.prelabels import create_prelabels, vectorise_classes
from labeling.services.annotations import Limits
from tests.unit.labeling.test_predictions import write_prediction

CLASSES = [{"value": 0, "label": "land", "color": "#00ff00"}, {"value": 3, "label": "water"}]


def _utm_area(geometry: dict, crs: str) -> float:
    from rasterio.warp import transform_geom

    return shape(transform_geom("EPSG:4326", crs, geometry)).area


def _raster() -> np.ndarray:
    """Land with a water block, a 2-pixel water sliver, a nodata strip."""
    v = np.zeros((64, 64), dtype=np.float64)
    v[10:40, 20:50] = 3  # 900 px
    v[55, 5:7] = 3  # a sliver: merged into the land around it
    v[:, 60:] = np.nan  # 256 px nodata
    return v


def test_polygons_cover_each_class_with_its_area(windows):
    w = windows[0]
    grid = w.to_window()
    labels, dropped = vectorise_classes(
        _raster(),
        transform=grid.transform,
        crs=w.crs,
        resolution=w.resolution,
        classes=CLASSES,
        limits=Limits(),
    )
    area = {0: 0.0, 3: 0.0}
    footprint = shape(w.geometry).buffer(1e-7)
    for p in labels:
        geom = shape(p.geometry)
        assert geom.is_valid and geom.geom_type == "Polygon" and footprint.contains(geom)
        area[p.class_value] += _utm_area(p.geometry, w.crs)
    px = w.resolution**2
    assert area[3] / px == pytest.approx(900, rel=0.01)  # the sliver went to land
    assert area[0] / px == pytest.approx(64 * 60 - 900, rel=0.01)  # nothing over nodata
    assert sorted(p.class_value for p in labels) == [0, 3] and dropped == 0


def test_a_background_class_the_project_marks_is_skipped(windows):
    w = windows[0]
    marked = [dict(CLASSES[0], background=True), CLASSES[1]]
    labels, _ = vectorise_classes(
        _raster(),
        transform=w.to_window().transform,
        crs=w.crs,
        resolution=w.resolution,
        classes=marked,
        limits=Limits(),
    )
    assert [p.class_value for p in labels] == [3]


def test_outlines_are_simplified_to_the_vertex_limit_or_dropped(windows):
    w = windows[0]
    v = np.zeros((64, 64))
    for i in range(64):  # a staircase: many vertices at pixel precision
        v[i, : max(1, i)] = 3
    kwargs = dict(
        transform=w.to_window().transform,
        crs=w.crs,
        resolution=w.resolution,
        classes=CLASSES,
        min_pixels=1,
    )
    exact, _ = vectorise_classes(v, limits=Limits(), **kwargs)
    n = [len(shape(p.geometry).exterior.coords) for p in exact]
    assert max(n) > 60
    fitted, dropped = vectorise_classes(v, limits=Limits(max_vertices=12), **kwargs)
    assert len(fitted) == 2 and dropped == 0
    for p, e in zip(fitted, exact):
        g = shape(p.geometry)
        assert g.is_valid and len(g.exterior.coords) <= 12
        assert _utm_area(p.geometry, w.crs) == pytest.approx(_utm_area(e.geometry, w.crs), rel=0.1)
    none, dropped = vectorise_classes(v, limits=Limits(max_vertices=3), **kwargs)
    assert none == [] and dropped == 2


# --- create_prelabels with the session -------------------------------------------------------
def _job(session, project, window, files: dict, task: str):
    from labeling.jobs import Job
    from labeling.models import DatasetRecord, ModelEntry

    model = ModelEntry(project_id=project.id, name="m", task_type=task)
    session.add(model)
    session.flush()
    dataset = session.get(DatasetRecord, window.dataset_id)
    job = Job(
        kind="inference",
        status="succeeded",
        project_id=project.id,
        payload={"dataset": dataset.name, "model_id": model.id},
        result={
            "windows": [window.name],
            "artifacts": {f"{window.name}{k}": str(v) for k, v in files.items()},
            "model_id": model.id,
            "task": task,
        },
    )
    session.add(job)
    session.commit()
    return job, model


def _press(session, project, window, job, user_id):
    return create_prelabels(
        session,
        project=project,
        window=window,
        job_id=job.id,
        author_id=user_id,
        limits=Limits(),
        lock_minutes=30,
    )


def test_pressing_twice_replaces_unedited_pre_labels_and_keeps_edits(
    session, project, windows, tmp_path
):
    from labeling.models import Annotation
    from labeling.services.annotations import list_annotations, update_annotation

    w = windows[0]
    cog = write_prediction(
        tmp_path / "jobs" / w.name / "prediction.tif",
        w,
        np.nan_to_num(_raster(), nan=255).astype(np.uint8),
        nodata=255,
        classes=CLASSES,
    )
    job, model = _job(session, project, w, {".tif": cog}, "segmentation")
    user = project.created_by
    first = _press(session, project, w, job, user)
    assert first["replaced"] == 0 and len(first["created"]) == 2
    assert all(a.origin == "model" and a.model_id == model.id for a in first["created"])
    assert all(a.properties == {"job_id": job.id} for a in first["created"])
    second = _press(session, project, w, job, user)
    assert second["replaced"] == 2 and len(list_annotations(session, window_id=w.id)) == 2
    water = next(a for a in second["created"] if a.class_value == 3)
    update_annotation(
        session,
        project=project,
        annotation_id=water.id,
        version=water.version,
        author_id=user,
        changes={"class_value": 0},
    )
    third = _press(session, project, w, job, user)
    assert third["replaced"] == 1
    rows = list_annotations(session, window_id=w.id)
    assert len(rows) == 3 and session.get(Annotation, water.id).edited is True


def test_a_window_claimed_by_someone_else_is_a_423_and_nothing_changes(
    session, project, windows, tmp_path
):
    from api.auth import create_user
    from labeling.services import claims
    from labeling.services.annotations import list_annotations
    from labeling.services.errors import LockedError

    w = windows[1]
    cog = write_prediction(
        tmp_path / "jobs" / w.name / "prediction.tif",
        w,
        np.zeros((64, 64), np.uint8),
        nodata=255,
        classes=CLASSES,
    )
    job, _ = _job(session, project, w, {".tif": cog}, "segmentation")
    holder = create_user(session, name="holder")
    claims.claim(session, window_id=w.id, user_id=holder.id, minutes=30)
    with pytest.raises(LockedError, match="claimed by holder"):
        _press(session, project, w, job, project.created_by)
    assert list_annotations(session, window_id=w.id) == []


def _project(session, task: str, tmp_path):
    from api.auth import create_user
    from labeling.services import windows as svc
    from labeling.services.projects import create_project

    owner = create_user(session, name=f"owner-{task}", is_admin=True)
    project = create_project(session, owner=owner, name=task, task_type=task, classes=CLASSES)
    built = svc.build_windows(
        "aoi",
        max_windows=10,
        aoi=[-0.77, 38.09, -0.769, 38.091],
        start="2020-01-01",
        end="2020-02-01",
        size=64,
        resolution=10.0,
    )
    record = svc.get_dataset(session, project_id=project.id, name="d", project_dir=tmp_path / task)
    rows, _ = svc.add_windows(
        session, project=project, dataset=record, windows=built, skip_existing=False
    )
    return project, rows[0]


def test_classification_labels_the_footprint_with_the_majority_class(session, tmp_path):
    project, w = _project(session, "classification", tmp_path)
    v = np.full((64, 64), 3, np.uint8)
    v[:20] = 0
    cog = write_prediction(
        tmp_path / "jobs" / w.name / "prediction.tif",
        w,
        v,
        nodata=255,
        classes=CLASSES,
        task="classification",
    )
    job, _ = _job(session, project, w, {".tif": cog}, "classification")
    (label,) = _press(session, project, w, job, project.created_by)["created"]
    assert label.class_value == 3 and shape(label.geometry).equals(shape(w.geometry))


def test_detection_pre_labels_are_the_predicted_boxes_and_points(session, tmp_path):
    project, w = _project(session, "detection", tmp_path)
    c = shape(w.geometry).centroid
    box = shape(w.geometry).buffer(-0.001).envelope
    feats = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [c.x, c.y]},
         "properties": {"class_value": 3, "score": 0.9}},
        {"type": "Feature", "geometry": json.loads(json.dumps(box.__geo_interface__)),
         "properties": {"class_value": 0, "score": 0.2}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [10.0, 10.0]},
         "properties": {"class_value": 3, "score": 0.9}},  # outside the window: dropped
    ]  # fmt: skip
    path = tmp_path / "jobs" / w.name / "prediction.geojson"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    job, _ = _job(session, project, w, {".geojson": path}, "detection")
    got = _press(session, project, w, job, project.created_by)
    assert sorted(a.geometry["type"] for a in got["created"]) == ["Point", "Polygon"]
    assert got["dropped"] == 1
    strong = create_prelabels(
        session,
        project=project,
        window=w,
        job_id=job.id,
        author_id=project.created_by,
        limits=Limits(),
        lock_minutes=30,
        min_score=0.5,
    )
    assert [a.class_value for a in strong["created"]] == [3] and strong["replaced"] == 2


def test_value_projects_get_a_422_naming_why(session, tmp_path):
    from labeling.services.errors import InvalidInputError

    project, w = _project(session, "regression", tmp_path)
    with pytest.raises(InvalidInputError, match="regression project"):
        _press(session, project, w, type("J", (), {"id": 1})(), project.created_by)
