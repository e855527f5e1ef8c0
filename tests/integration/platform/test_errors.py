"""Refused requests answer 4xx with a clear message and leave nothing behind (rows and files are
counted before and after)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from labeling.models import Annotation, DatasetRecord, Layer, WindowRecord
from tests.conftest import MISSING
from tests.integration.platform.conftest import (
    ADMIN,
    SPAIN_CHIP,
    centre,
    make_project,
    make_user,
    make_windows,
)


def files(root: Path) -> list[str]:
    return sorted(
        str(Path(d, f).relative_to(root))
        for d, _, names in os.walk(root)
        for f in names
        if not f.startswith("earthplat.db")
    )


def count(app, model) -> int:
    with app.state.session_factory() as session:
        return session.scalar(select(func.count()).select_from(model))


def state(app, data_dir: Path) -> tuple:
    return (
        files(data_dir),
        *(count(app, m) for m in (Layer, WindowRecord, DatasetRecord, Annotation)),
    )


def assert_refused(r, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["fix"], body
    for word in words:
        assert word in str(body["detail"]), (word, body)


def test_bad_uploads(client, app, data_dir, shared_data):
    pid = make_project(client)["id"]
    url = f"/api/v1/projects/{pid}/layers/upload"
    naip = sorted((shared_data / "real" / "chesapeake_naip_geobench").glob("*_naip_rgbn.tif"))
    if not naip:
        import pytest

        pytest.skip(f"{MISSING} chesapeake_naip_geobench NAIP tiles")
    before = state(app, data_dir)

    r = client.post(url, files={"file": ("notes.tif", b"this is not a raster", "image/tiff")},
                    headers=ADMIN)  # fmt: skip
    assert_refused(r, 422, "notes.tif", "not a raster")
    # a real GeoTIFF without a CRS
    r = client.post(url, files={"file": (naip[0].name, naip[0].read_bytes(), "image/tiff")},
                    headers=ADMIN)  # fmt: skip
    assert_refused(r, 422, naip[0].name, "no coordinate reference system")
    # over max_upload_mb (4 MiB in these tests)
    big = np.random.default_rng(0).bytes(5 * 2**20)
    r = client.post(url, files={"file": ("big.tif", big, "image/tiff")}, headers=ADMIN)
    assert_refused(r, 413, "big.tif", "upload limit")
    r = client.post(url, files={"file": ("empty.tif", b"", "image/tiff")}, headers=ADMIN)
    assert_refused(r, 422, "empty")
    assert state(app, data_dir) == before

    # a real georeferenced chip is accepted, and listed
    chip = shared_data / "real" / SPAIN_CHIP
    r = client.post(url, files={"file": (chip.name, chip.read_bytes(), "image/tiff")},
                    data={"modality": "sentinel2_l2a"}, headers=ADMIN)  # fmt: skip
    assert r.status_code == 201, r.text
    layer = r.json()
    assert layer["crs"] == "EPSG:4326" and layer["info"]["count"] == 13
    assert Path(layer["path"]).read_bytes() == chip.read_bytes()
    assert [
        x["id"] for x in client.get(f"/api/v1/projects/{pid}/layers", headers=ADMIN).json()
    ] == [layer["id"]]


def test_bad_geometry_and_class(client, app, data_dir):
    project = make_project(client)
    pid = project["id"]
    window = make_windows(client, pid, [-0.77, 38.09, -0.76, 38.1])[0]
    url = f"/api/v1/windows/{window['id']}/annotations"
    before = state(app, data_dir)
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[-0.765, 38.09], [-0.76, 38.095], [-0.76, 38.09], [-0.765, 38.095],
                         [-0.765, 38.09]]],
    }  # fmt: skip
    r = client.post(url, json={"geometry": bowtie, "class_value": 1}, headers=ADMIN)
    assert_refused(r, 422, "not valid", "Self-intersection")
    for geometry, word in [
        ({"type": "Point", "coordinates": [500, 38]}, "lon/lat range"),
        ({"type": "Polygon", "coordinates": []}, "empty"),
        ({"type": "Blob", "coordinates": [1, 2]}, "GeoJSON"),
        ({"coordinates": [1, 2]}, "GeoJSON"),
    ]:
        r = client.post(url, json={"geometry": geometry, "class_value": 1}, headers=ADMIN)
        assert_refused(r, 422, word)
    r = client.post(
        url,
        json={"geometry": {"type": "Point", "coordinates": [10, 50]}, "class_value": 1},
        headers=ADMIN,
    )
    assert_refused(r, 422, "outside window")
    point = centre(window)
    r = client.post(url, json={"geometry": point, "class_value": 7}, headers=ADMIN)
    # names the class and the schema
    assert_refused(r, 422, "class 7", "0 (land), 1 (water)")
    r = client.post(url, json={"geometry": point}, headers=ADMIN)
    assert_refused(r, 422, "needs a class_value")
    assert state(app, data_dir) == before
    # the window was not touched either
    assert client.get(f"/api/v1/windows/{window['id']}", headers=ADMIN).json()["status"] == (
        "unlabeled"
    )
    # a stale or missing version on update is refused without change
    ann = client.post(url, json={"geometry": point, "class_value": 1}, headers=ADMIN).json()
    r = client.patch(f"/api/v1/annotations/{ann['id']}", json={"class_value": 0}, headers=ADMIN)
    assert_refused(r, 422, "version")
    r = client.patch(
        f"/api/v1/annotations/{ann['id']}",
        json={"class_value": 0},
        headers={**ADMIN, "If-Match": '"5"'},
    )
    assert_refused(r, 409, "version 1, not 5")
    r = client.delete(f"/api/v1/annotations/{ann['id']}?version=3", headers=ADMIN)
    assert_refused(r, 409, "version 1, not 3")
    r = client.patch(
        f"/api/v1/annotations/{ann['id']}", json={"version": 1, "class_value": 9}, headers=ADMIN
    )
    assert_refused(r, 422, "class 9")
    got = client.get(f"/api/v1/annotations/{ann['id']}", headers=ADMIN).json()
    assert got["version"] == 1 and got["class_value"] == 1


def test_bad_collection_requests(client, app, data_dir):
    pid = make_project(client)["id"]
    before = state(app, data_dir)
    url = f"/api/v1/projects/{pid}/windows"
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    times = {"start": "2020-01-01", "end": "2020-02-01"}
    r = client.post(f"{url}/aoi", json={"geojson": bowtie, **times}, headers=ADMIN)
    assert_refused(r, 422, "not a valid geometry")
    r = client.post(f"{url}/aoi", json={"bbox": [-10, 30, 10, 50], **times}, headers=ADMIN)
    assert_refused(r, 422, "over the limit")
    r = client.post(
        f"{url}/aoi",
        json={"bbox": [-0.77, 38.09, -0.76, 38.1], "start": "2020-02-01", "end": "2020-01-01"},
        headers=ADMIN,
    )
    assert_refused(r, 422, "before it starts")
    r = client.post(f"{url}/polygons", json={"features": [{"geometry": bowtie}], **times},
                    headers=ADMIN)  # fmt: skip
    assert_refused(r, 422, "polygon 1")
    r = client.post(
        f"{url}/points",
        files={"file": ("pts.csv", b"lon,lat\n-0.76,38.1\n", "text/csv")},
        headers=ADMIN,
    )
    assert_refused(r, 422, "start", "end")
    r = client.post(
        f"{url}/points", files={"file": ("pts.csv", b"\xff\xfe\x00bad", "text/csv")}, headers=ADMIN
    )
    assert_refused(r, 422, "UTF-8")
    r = client.post(
        f"/api/v1/projects/{pid}/sources/stac",
        json={"name": "s2", "url": "ftp://nowhere", "collection": "sentinel-2-l2a"},
        headers=ADMIN,
    )
    assert_refused(r, 422, "ftp://nowhere")
    r = client.post(
        f"/api/v1/projects/{pid}/sources/stac",
        json={"name": "s2", "url": "https://x.test/v1", "collection": "c", "modality": "nope"},
        headers=ADMIN,
    )
    assert_refused(r, 422, "nope")
    r = client.post(
        "/api/v1/projects",
        json={"name": "dup", "task_type": "segmentation", "classes": [
            {"value": 1, "label": "a"}, {"value": 1, "label": "b"}]},
        headers=ADMIN,
    )  # fmt: skip
    assert_refused(r, 422, "unique")
    assert state(app, data_dir) == before

    # and a good points CSV works, then the same names conflict without writing anything
    csv = b"name,lon,lat,start,end,kind\np1,-0.76,38.1,2020-01-01,2020-02-01,river\n"
    r = client.post(f"{url}/points", files={"file": ("p.csv", csv, "text/csv")}, headers=ADMIN)
    assert r.status_code == 201 and r.json()["windows"][0]["properties"] == {"kind": "river"}
    after = state(app, data_dir)
    r = client.post(f"{url}/points", files={"file": ("p.csv", csv, "text/csv")}, headers=ADMIN)
    assert_refused(r, 409, "p1")
    assert state(app, data_dir) == after
    r = client.post(
        f"/api/v1/projects/{pid}/sources/stac",
        json={"name": "s2", "url": "https://earth-search.aws.element84.com/v1",
              "collection": "sentinel-2-l2a"},
        headers=ADMIN,
    )  # fmt: skip
    assert r.status_code == 201 and r.json()["kind"] == "stac"


def test_wrong_role_changes_nothing(client, app, data_dir):
    pid = make_project(client)["id"]
    window = make_windows(client, pid, [-0.77, 38.09, -0.76, 38.1])[0]
    _, viewer = make_user(client, "v", project_id=pid, role="viewer")
    before = state(app, data_dir)
    point = centre(window)
    r = client.post(f"/api/v1/windows/{window['id']}/annotations",
                    json={"geometry": point, "class_value": 1}, headers=viewer)  # fmt: skip
    assert_refused(r, 403, "viewer")
    chip = b"II*\x00" + b"\x00" * 100
    r = client.post(f"/api/v1/projects/{pid}/layers/upload",
                    files={"file": ("x.tif", chip, "image/tiff")}, headers=viewer)  # fmt: skip
    assert_refused(r, 403, "viewer")
    assert state(app, data_dir) == before


def test_unknown_routes_answer_json(client):
    r = client.get("/api/v1/nothing-here", headers=ADMIN)
    assert_refused(r, 404, "Not Found")
    r = client.put("/api/v1/projects", headers=ADMIN)
    assert_refused(r, 405, "Method Not Allowed")


def test_a_null_in_a_project_patch_is_refused_and_changes_nothing(client):
    project = make_project(client)
    url = f"/api/v1/projects/{project['id']}"
    for field in ("name", "description", "classes", "sensors"):
        r = client.patch(url, json={field: None}, headers=ADMIN)
        assert r.status_code == 422, (field, r.text)
        assert f"{field} may not be null" in r.text
    r = client.patch(url, json={"end": None}, headers=ADMIN)  # the period's end may be cleared
    assert r.status_code == 200 and r.json()["end"] is None
    after = client.get(url, headers=ADMIN).json()
    assert {k: after[k] for k in ("name", "description", "classes", "sensors")} == {
        k: project[k] for k in ("name", "description", "classes", "sensors")
    }
