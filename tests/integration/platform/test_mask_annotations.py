"""Painted class masks through the HTTP API, on SQLite and PostgreSQL: create/read/patch/delete,
bad masks refused with the fix and nothing stored, the export job burning the painted pixels
bit for bit (and polygons with holes leaving the hole unlabelled), merge and split, and the
0002 -> 0003 migration keeping existing rows.

Windows lie over the real Sen1Floods11 chip (Spain, UTM 30N, 10 m); pixels are drawn with a
seeded generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from api.jobs.worker import run_worker
from labeling import masks
from tests.integration.platform.conftest import (
    ADMIN,
    chip_bbox,
    make_project,
    make_user,
    make_windows,
)


# --- helpers --------------------------------------------------------------------------------
def grid_of(window: dict):
    """The earthplat Window of a window as the API returns it (its own grid facts)."""
    from earthplat.data.window import Window

    bounds = (window["col_min"], window["row_min"], window["col_max"], window["row_max"])
    return Window(
        window["name"], window["crs"], window["resolution"], bounds, window["start"], window["end"]
    )


def pixel_polygon(window: dict, box, holes=()) -> dict:
    """A WGS84 GeoJSON polygon of window pixels ``box`` = (col0, row0, col1, row1) (exclusive
    ends, pixel edges) with pixel-box ``holes``."""
    from rasterio.warp import transform_geom

    g = grid_of(window)

    def ring(c0, r0, c1, r1):
        corners = [(c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0)]
        return [tuple(g.transform @ c) for c in corners]

    geom = {"type": "Polygon", "coordinates": [ring(*box), *[ring(*h)[::-1] for h in holes]]}
    return transform_geom(g.crs, "EPSG:4326", geom)


def painting(window: dict, seed: int) -> np.ndarray:
    """A brush-like painting on the window grid: a blob, scattered dabs, an edge region."""
    rng = np.random.default_rng(seed)
    g = grid_of(window)
    pixels = np.zeros((g.height, g.width), bool)
    r, c = rng.integers(5, g.height // 2, 2)
    pixels[r : r + 20, c : c + 15] = True
    pixels[rng.integers(0, g.height, 60), rng.integers(0, g.width, 60)] = True
    pixels[-6:, :9] = True
    return pixels


@pytest.fixture
def floods(client, shared_data):
    """A segmentation project with 64 x 64 windows over the chip: (project, windows)."""
    project = make_project(client)
    windows = make_windows(client, project["id"], chip_bbox(shared_data), size=64)
    return project, windows


def post(client, window: dict, body: dict, headers=ADMIN):
    return client.post(f"/api/v1/windows/{window['id']}/annotations", json=body, headers=headers)


def listed(client, window: dict) -> list[dict]:
    r = client.get(f"/api/v1/windows/{window['id']}/annotations", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def run_export(client, project_id: int) -> Path:
    """The platform's export job (the one a fine-tune trains on) run by a worker."""
    r = client.post(
        f"/api/v1/projects/{project_id}/jobs",
        json={"kind": "export_dataset", "payload": {"statuses": ["in_progress"]}},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    state = client.app.state
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )
    job = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()
    assert job["status"] == "succeeded", job["message"]
    return Path(job["result"]["path"])


def read_label(root: Path, window: dict) -> np.ndarray:
    import rasterio

    from earthplat.data.dataset import Dataset

    with rasterio.open(Dataset(root).layer_path(grid_of(window), "label", ".tif")) as src:
        return src.read(1)


# --- create / read / patch / delete ---------------------------------------------------------
def test_mask_annotation_lifecycle(client, floods):
    _project, windows = floods
    w = windows[0]
    pixels = painting(w, seed=1)
    rle = masks.encode(pixels)
    # a geometry sent with a mask is ignored: the mask wins
    point = {"type": "Point", "coordinates": [0.0, 0.0]}
    r = post(client, w, {"mask": rle, "geometry": point, "class_value": 1})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["mask"] == rle and made["version"] == 1 and r.headers["ETag"] == '"1"'
    assert made["geometry"]["type"] == "MultiPolygon"

    from earthplat.data.labels import rasterize_features

    feature = {"type": "Feature", "geometry": made["geometry"], "properties": {"class": 1}}
    outline, _ = rasterize_features(grid_of(w), [feature])
    assert np.array_equal(outline == 1, pixels)  # the derived outline covers exactly the pixels

    got = client.get(f"/api/v1/annotations/{made['id']}", headers=ADMIN).json()
    assert got["mask"] == rle and [a["mask"] for a in listed(client, w)] == [rle]

    # PATCH with a mask replaces pixels and outline (If-Match versioning as for geometries)
    erased = pixels.copy()
    erased[: erased.shape[0] // 2] = False
    url = f"/api/v1/annotations/{made['id']}"
    r = client.patch(url, json={"mask": masks.encode(erased)}, headers={**ADMIN, "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    patched = r.json()
    assert patched["version"] == 2 and np.array_equal(masks.decode(patched["mask"]), erased)
    assert patched["geometry"] != made["geometry"]
    r = client.patch(url, json={"mask": rle}, headers={**ADMIN, "If-Match": '"1"'})
    assert r.status_code == 409 and "version 2" in r.json()["detail"]
    # a painted annotation's geometry changes only through its pixels
    r = client.patch(
        url, json={"version": 2, "geometry": pixel_polygon(w, (1, 1, 5, 5))}, headers=ADMIN
    )
    assert r.status_code == 422 and "mask" in r.json()["fix"]
    r = client.patch(url, json={"version": 2, "class_value": 0}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["mask"] == patched["mask"]

    # a drawn polygon answers mask null
    r = post(client, w, {"geometry": pixel_polygon(w, (1, 1, 5, 5)), "class_value": 0})
    assert r.status_code == 201 and r.json()["mask"] is None

    assert client.delete(f"{url}?version=3", headers=ADMIN).status_code == 204
    assert [a["mask"] for a in listed(client, w)] == [None]


# --- bad masks ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "status", "fix"),
    [
        ("wrong shape", 422, "[64, 64]"),
        ("bad sum", 422, "every pixel"),
        ("negative", 422, "run lengths"),
        ("empty", 422, "delete the annotation"),
        ("too big", 413, "EARTHPLAT_ANNOTATION_MAX_BYTES"),
        ("no class", 422, "send class_value"),
        ("wrong task", 422, "segmentation projects"),
        ("nothing", 422, "'mask'"),
    ],
)
def test_bad_masks_are_refused_and_store_nothing(client, floods, case, status, fix):
    _project, windows = floods
    w = windows[0]
    n = 64 * 64
    body = {"class_value": 1, "mask": {"encoding": "rle", "shape": [64, 64], "counts": [0, n]}}
    if case == "wrong shape":
        body["mask"]["shape"] = [32, 128]
    elif case == "bad sum":
        body["mask"]["counts"] = [10, n]
    elif case == "negative":
        body["mask"]["counts"] = [-5, n + 5]
    elif case == "empty":
        body["mask"]["counts"] = [n]
    elif case == "too big":  # over EARTHPLAT_ANNOTATION_MAX_BYTES (1 MB, as for geometries)
        body["mask"]["counts"] = [0] * 600_000 + [0, n]
    elif case == "no class":
        body.pop("class_value")
    elif case == "wrong task":
        other = make_project(client, name="scenes", task_type="classification")
        w = make_windows(client, other["id"], [-1.5, 38.0, -1.49, 38.01], size=64)[0]
    elif case == "nothing":
        body.pop("mask")
    r = post(client, w, body)
    assert r.status_code == status, r.text
    assert fix in r.json()["fix"], r.json()
    if case == "no class":
        assert "needs a class_value" in r.json()["detail"]
    if case == "wrong task":
        assert "classification project" in r.json()["detail"]
        assert "point or polygon" in r.json()["fix"]
    assert listed(client, w) == []
    assert client.get(f"/api/v1/windows/{w['id']}", headers=ADMIN).json()["status"] == "unlabeled"


# --- export ---------------------------------------------------------------------------------
def test_export_burns_painted_pixels_exactly_and_keeps_polygon_holes(client, floods):
    """The label raster equals the painted pixels bit for bit; a polygon's hole stays
    unlabelled; later annotations burn over earlier ones, masks and polygons alike."""
    project, windows = floods
    a, b = windows[0], windows[1]
    # window a: a land polygon with a hole (first), then painted water over part of it
    ring, hole = (4, 4, 60, 60), (20, 20, 40, 40)
    r = post(client, a, {"geometry": pixel_polygon(a, ring, [hole]), "class_value": 0})
    assert r.status_code == 201, r.text
    water = painting(a, seed=2)
    r = post(client, a, {"mask": masks.encode(water), "class_value": 1})
    assert r.status_code == 201, r.text
    # window b: painted land first, then a water polygon drawn over part of it
    land = painting(b, seed=3)
    assert post(client, b, {"mask": masks.encode(land), "class_value": 0}).status_code == 201
    square = (0, 0, 32, 32)
    r = post(client, b, {"geometry": pixel_polygon(b, square), "class_value": 1})
    assert r.status_code == 201, r.text

    root = run_export(client, project["id"])
    got = read_label(root, a)
    polygon = np.zeros_like(water)
    polygon[ring[1] : ring[3], ring[0] : ring[2]] = True
    polygon[hole[1] : hole[3], hole[0] : hole[2]] = False
    expected = np.full(water.shape, -1, np.int16)
    expected[polygon] = 0
    expected[water] = 1
    assert np.array_equal(got, expected)
    assert (got[hole[1] : hole[3], hole[0] : hole[2]][~water[20:40, 20:40]] == -1).all()

    got = read_label(root, b)
    expected = np.full(land.shape, -1, np.int16)
    expected[land] = 0
    expected[: square[3], : square[2]] = 1  # the later polygon over the earlier mask
    assert np.array_equal(got, expected)

    # annotations.geojson carries the outline and the RLE
    import json

    feats = json.loads((root / "annotations.geojson").read_text())["features"]
    painted = [f for f in feats if "mask" in f["properties"]]
    assert len(painted) == 2 and all(f["geometry"]["type"] == "MultiPolygon" for f in painted)
    assert masks.encode(water) in [f["properties"]["mask"] for f in painted]
    # so does the API's GeoJSON export; a drawn polygon keeps its hole there
    out = client.get(f"/api/v1/projects/{project['id']}/export/geojson", headers=ADMIN).json()
    kinds = {(f["geometry"]["type"], "mask" in f["properties"]) for f in out["features"]}
    assert kinds == {("MultiPolygon", True), ("Polygon", False)}
    holed = [f for f in out["features"] if len(f["geometry"]["coordinates"]) == 2]
    assert len(holed) == 1 and holed[0]["properties"]["class"] == 0
    # and the GeoParquet export, the RLE as JSON text
    import io

    import geopandas as gpd

    r = client.get(f"/api/v1/projects/{project['id']}/export/geoparquet", headers=ADMIN)
    assert r.status_code == 200
    frame = gpd.read_parquet(io.BytesIO(r.content))
    rles = [json.loads(m) for m in frame["mask"] if isinstance(m, str)]
    assert masks.encode(water) in rles and len(rles) == 2


@pytest.mark.parametrize(
    ("coordinates", "detail", "fix"),
    [
        (  # the hole lies outside the shell
            [
                [[-1.0, 38.0], [-0.99, 38.0], [-0.99, 38.01], [-1.0, 38.01], [-1.0, 38.0]],
                [[-0.98, 38.0], [-0.97, 38.0], [-0.97, 38.01], [-0.98, 38.0]],
            ],
            "Hole lies outside shell",
            "inside its polygon's outer ring",
        ),
        (  # a bow-tie
            [[[-1.0, 38.0], [-0.99, 38.01], [-0.99, 38.0], [-1.0, 38.01], [-1.0, 38.0]]],
            "Self-intersection",
            "edges cross",
        ),
    ],
)
def test_invalid_polygons_name_the_problem(client, floods, coordinates, detail, fix):
    _, windows = floods
    r = post(client, windows[0], {"geometry": {"type": "Polygon", "coordinates": coordinates}})
    assert r.status_code == 422 and detail in r.json()["detail"] and fix in r.json()["fix"]
    assert listed(client, windows[0]) == []


# --- merge and split ------------------------------------------------------------------------
def test_merge_and_split_polygons(client, floods):
    from shapely.geometry import shape

    _project, windows = floods
    w = windows[0]
    made = []
    for box, cls in (((2, 2, 20, 20), 1), ((20, 2, 40, 20), 1), ((2, 30, 10, 40), 0)):
        r = post(client, w, {"geometry": pixel_polygon(w, box), "class_value": cls})
        assert r.status_code == 201, r.text
        made.append(r.json())
    one, two, other = made
    url = "/api/v1/annotations/merge"
    versions = {str(a["id"]): 1 for a in made}
    r = client.post(
        url, json={"ids": [one["id"], other["id"]], "versions": versions}, headers=ADMIN
    )
    assert r.status_code == 422 and "one class" in r.json()["detail"]
    stale = {str(one["id"]): 1, str(two["id"]): 7}
    r = client.post(url, json={"ids": [one["id"], two["id"]], "versions": stale}, headers=ADMIN)
    assert r.status_code == 409 and "version 1, not 7" in r.json()["detail"]
    assert len(listed(client, w)) == 3  # nothing changed

    r = client.post(url, json={"ids": [one["id"], two["id"]], "versions": versions}, headers=ADMIN)
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["id"] == one["id"] and merged["version"] == 2
    area = shape(one["geometry"]).area + shape(two["geometry"]).area
    assert merged["geometry"]["type"] == "Polygon"  # adjacent squares become one shape
    assert shape(merged["geometry"]).area == pytest.approx(area, rel=1e-6)
    assert client.get(f"/api/v1/annotations/{two['id']}", headers=ADMIN).status_code == 404

    # split it back along the shared edge (a line from outside to outside)
    edge = pixel_polygon(w, (20, 0, 20, 25))["coordinates"][0]
    line = {"type": "LineString", "coordinates": [edge[0], edge[2]]}
    split_url = f"/api/v1/annotations/{merged['id']}/split"
    r = client.post(split_url, json={"line": line}, headers={**ADMIN, "If-Match": '"1"'})
    assert r.status_code == 409
    r = client.post(split_url, json={"line": line, "version": 2}, headers=ADMIN)
    assert r.status_code == 200, r.text
    parts = r.json()
    assert len(parts) == 2 and parts[0]["id"] == merged["id"] and parts[0]["version"] == 3
    assert {p["class_value"] for p in parts} == {1}
    assert sum(shape(p["geometry"]).area for p in parts) == pytest.approx(area, rel=1e-6)
    # the cut follows the shared edge: the parts are the two squares again, largest kept
    halves = [shape(two["geometry"]).area, shape(one["geometry"]).area]
    assert [shape(p["geometry"]).area for p in parts] == pytest.approx(halves, rel=1e-3)
    assert len(listed(client, w)) == 3
    miss = {"type": "LineString", "coordinates": [[0.0, 0.0], [0.001, 0.001]]}
    r = client.post(split_url, json={"line": miss, "version": 3}, headers=ADMIN)
    assert r.status_code == 422 and "outside it" in r.json()["fix"]


def test_merge_masks_is_the_union_of_pixels_and_obeys_claims(client, floods):
    project, windows = floods
    w = windows[0]
    first, second = painting(w, seed=4), painting(w, seed=5)
    ids = []
    for pixels in (first, second):
        r = post(client, w, {"mask": masks.encode(pixels), "class_value": 1})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = post(client, w, {"geometry": pixel_polygon(w, (2, 2, 8, 8)), "class_value": 1})
    polygon = r.json()["id"]
    body = {"ids": [*ids, polygon], "versions": {str(i): 1 for i in [*ids, polygon]}}
    r = client.post("/api/v1/annotations/merge", json=body, headers=ADMIN)
    assert r.status_code == 422 and "masks with masks" in r.json()["fix"]
    r = client.post(
        f"/api/v1/annotations/{ids[0]}/split", json={"line": {}, "version": 1}, headers=ADMIN
    )
    assert r.status_code == 422 and "eraser" in r.json()["fix"]

    # someone else's claim on the window: 423, and a viewer may not merge: 403
    _, labeler = make_user(client, "ana", project_id=project["id"], role="labeler")
    _, viewer = make_user(client, "vic", project_id=project["id"], role="viewer")
    body = {"ids": ids, "versions": {str(i): 1 for i in ids}}
    assert client.post("/api/v1/annotations/merge", json=body, headers=viewer).status_code == 403
    assert client.post("/api/v1/annotations/merge", json=body, headers=labeler).status_code == 423

    r = client.post("/api/v1/annotations/merge", json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert np.array_equal(masks.decode(r.json()["mask"]), first | second)
    assert [a["id"] for a in listed(client, w)] == [ids[0], polygon]

    # a submitted (frozen) window refuses merges and splits: 409
    assert client.post(f"/api/v1/windows/{w['id']}/submit", headers=ADMIN).status_code == 200
    body = {"ids": [ids[0], polygon], "versions": {str(ids[0]): 2, str(polygon): 1}}
    r = client.post("/api/v1/annotations/merge", json=body, headers=ADMIN)
    assert r.status_code == 409 and "submitted" in r.json()["detail"]
    edge = pixel_polygon(w, (5, 0, 5, 12))["coordinates"][0]
    line = {"type": "LineString", "coordinates": [edge[0], edge[2]]}
    r = client.post(
        f"/api/v1/annotations/{polygon}/split", json={"line": line, "version": 1}, headers=ADMIN
    )
    assert r.status_code == 409 and "submitted" in r.json()["detail"]


# --- migration ------------------------------------------------------------------------------
def test_migration_0002_to_0003_keeps_rows(db_url, data_dir):
    import sqlalchemy as sa

    from api.database import make_engine, upgrade

    upgrade(db_url, "0002")
    engine = make_engine(db_url)
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    geometry = {"type": "Point", "coordinates": [-1.0, 38.0]}
    with engine.begin() as conn:
        meta = sa.MetaData()
        meta.reflect(conn)
        assert "mask" not in meta.tables["annotations"].c
        t = meta.tables
        conn.execute(t["users"].insert().values(id=1, name="old", is_admin=True, created_at=now))
        conn.execute(
            t["projects"]
            .insert()
            .values(
                id=1,
                name="old",
                description="",
                task_type="segmentation",
                classes=[{"value": 1, "label": "water"}],
                sensors=[],
                settings={},
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            t["datasets"].insert().values(id=1, project_id=1, name="d", path="/x", created_at=now)
        )
        conn.execute(
            t["windows"]
            .insert()
            .values(
                id=1,
                project_id=1,
                dataset_id=1,
                name="w",
                group="default",
                crs="EPSG:32630",
                resolution=10.0,
                col_min=0,
                row_min=0,
                col_max=8,
                row_max=8,
                start=now,
                end=datetime(2026, 2, 1, tzinfo=UTC),
                geometry=geometry,
                properties={},
                status="in_progress",
                updated_at=now,
            )
        )
        conn.execute(
            t["annotations"]
            .insert()
            .values(
                id=1,
                project_id=1,
                window_id=1,
                geometry=geometry,
                class_value=1,
                properties={},
                author_id=1,
                version=4,
                created_at=now,
                updated_at=now,
            )
        )
    upgrade(db_url)
    with engine.connect() as conn:
        meta = sa.MetaData()
        meta.reflect(conn)
        rows = conn.execute(sa.select(meta.tables["annotations"])).mappings().all()
    engine.dispose()
    assert len(rows) == 1
    row = rows[0]
    assert row["mask"] is None and row["geometry"] == geometry and row["version"] == 4
    assert row["origin"] == "human" and row["class_value"] == 1
