"""Project -> windows (AOI over the real Sen1Floods11 chip) -> label -> submit -> review ->
export, through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import io

from shapely.geometry import shape

from tests.integration.platform.conftest import (
    ADMIN,
    chip_bbox,
    make_project,
    make_user,
    make_windows,
)


def _inner_polygon(window: dict, shrink: float = 0.3) -> dict:
    """A polygon well inside the window footprint."""
    geom = shape(window["geometry"])
    c = geom.centroid
    minx, miny, maxx, maxy = geom.bounds
    dx, dy = (maxx - minx) * shrink / 2, (maxy - miny) * shrink / 2
    ring = [
        [c.x - dx, c.y - dy],
        [c.x + dx, c.y - dy],
        [c.x + dx, c.y + dy],
        [c.x - dx, c.y + dy],
        [c.x - dx, c.y - dy],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def test_label_review_export(client, settings, shared_data):
    import geopandas as gpd

    from earthplat.data.dataset import Dataset

    project = make_project(client)
    pid = project["id"]
    bbox = chip_bbox(shared_data)
    windows = make_windows(client, pid, bbox, size=128)
    # the chip is 512 px at 10 m: a 128 px grid over it has at least 16 cells
    assert len(windows) >= 16
    footprint = shape({"type": "Polygon", "coordinates": [[
        [bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]], [bbox[0], bbox[3]],
        [bbox[0], bbox[1]],
    ]]})  # fmt: skip
    assert all(shape(w["geometry"]).intersects(footprint) for w in windows)
    assert {w["crs"] for w in windows} == {"EPSG:32630"}  # Spain, -0.76 E: UTM 30N

    # the windows are also an earthplat dataset on disk
    datasets = client.get(f"/api/v1/projects/{pid}/datasets", headers=ADMIN).json()
    assert len(datasets) == 1
    on_disk = Dataset(datasets[0]["path"]).windows()
    assert sorted(w.name for w in on_disk) == sorted(w["name"] for w in windows)
    # re-running the same AOI keeps the same cells
    again = client.post(
        f"/api/v1/projects/{pid}/windows/aoi",
        json={"bbox": bbox, "start": "2019-09-01", "end": "2019-10-01", "size": 128},
        headers=ADMIN,
    ).json()
    assert again["created"] == 0 and again["skipped"] == len(windows)

    labeler_id, labeler = make_user(client, "lab", project_id=pid, role="labeler")
    _, reviewer = make_user(client, "rev", project_id=pid, role="reviewer")

    task = client.post(f"/api/v1/projects/{pid}/tasks/next", headers=labeler).json()
    assert task["status"] == "in_progress" and task["locked_by"] == labeler_id
    wid = task["id"]
    r = client.post(
        f"/api/v1/windows/{wid}/annotations",
        json={"geometry": _inner_polygon(task), "class_value": 1},
        headers=labeler,
    )
    assert r.status_code == 201, r.text
    ann = r.json()
    assert ann["version"] == 1 and r.headers["etag"] == '"1"'
    r = client.patch(
        f"/api/v1/annotations/{ann['id']}",
        json={"class_value": 0},
        headers={**labeler, "If-Match": '"1"'},
    )
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["class_value"] == 0

    # a labeller cannot review; submit, then the reviewer accepts
    assert client.post(f"/api/v1/windows/{wid}/submit", headers=labeler).json()["status"] == (
        "submitted"
    )
    r = client.post(f"/api/v1/windows/{wid}/reviews", json={"decision": "accept"}, headers=labeler)
    assert r.status_code == 403
    r = client.post(
        f"/api/v1/windows/{wid}/reviews",
        json={"decision": "accept", "comment": "clean"},
        headers=reviewer,
    )
    assert r.status_code == 201 and r.json()["decision"] == "accept"
    assert client.get(f"/api/v1/windows/{wid}", headers=labeler).json()["status"] == "accepted"
    # accepted work is frozen
    r = client.patch(f"/api/v1/annotations/{ann['id']}", json={"version": 2}, headers=labeler)
    assert r.status_code == 409

    # a second task: rejected goes back to in_progress when worked on again
    task2 = client.post(f"/api/v1/projects/{pid}/tasks/next", headers=labeler).json()
    assert task2["id"] != wid
    client.post(
        f"/api/v1/windows/{task2['id']}/annotations",
        json={"geometry": _inner_polygon(task2), "class_value": 1},
        headers=labeler,
    )
    client.post(f"/api/v1/windows/{task2['id']}/submit", headers=labeler)
    r = client.post(
        f"/api/v1/windows/{task2['id']}/reviews",
        json={"decision": "reject", "comment": "missed the river"},
        headers=reviewer,
    )
    assert r.status_code == 201
    back = client.post(f"/api/v1/projects/{pid}/tasks/next", headers=labeler).json()
    assert back["id"] == task2["id"] and back["status"] == "in_progress"
    reviews = client.get(f"/api/v1/windows/{task2['id']}/reviews", headers=labeler).json()
    assert [r["comment"] for r in reviews] == ["missed the river"]

    # exports: only the accepted window's annotation
    fc = client.get(
        f"/api/v1/projects/{pid}/export/geojson", params={"status": "accepted"}, headers=labeler
    ).json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 1
    props = fc["features"][0]["properties"]
    assert props["class"] == 0 and props["label"] == "land" and props["version"] == 2
    assert props["window"] == task["name"] and props["author"] == "lab"
    assert shape(fc["features"][0]["geometry"]).within(shape(task["geometry"]))
    all_fc = client.get(f"/api/v1/projects/{pid}/export/geojson", headers=labeler).json()
    assert len(all_fc["features"]) == 2

    r = client.get(f"/api/v1/projects/{pid}/export/geoparquet", headers=labeler)
    assert r.status_code == 200
    frame = gpd.read_parquet(io.BytesIO(r.content))
    assert frame.crs.to_epsg() == 4326 and len(frame) == 2
    assert sorted(frame["label"]) == ["land", "water"]


def test_no_task_left(client):
    pid = make_project(client, name="empty")["id"]
    r = client.post(f"/api/v1/projects/{pid}/tasks/next", headers=ADMIN)
    assert r.status_code == 204 and r.content == b""
