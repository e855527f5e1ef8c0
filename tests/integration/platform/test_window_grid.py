"""What the labelling UI asks before it paints: a window's pixel grid in Web Mercator
(``GET /windows/{id}/grid``) and the task registry (``GET /tasks``), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.integration.platform.conftest import ADMIN, chip_bbox, make_project, make_windows


def test_the_grid_places_every_pixel_where_the_window_crs_puts_it(client, shared_data: Path):
    from rasterio.warp import transform

    project = make_project(client)
    (w, *_) = make_windows(client, project["id"], chip_bbox(shared_data), size=64)
    r = client.get(f"/api/v1/windows/{w['id']}/grid", headers=ADMIN)
    assert r.status_code == 200, r.text
    grid = r.json()
    assert (grid["width"], grid["height"]) == (64, 64) and grid["crs"] == w["crs"]
    a, b, c, d, e, f = grid["transform"]
    assert (a, e) == (w["resolution"], -w["resolution"]) and b == d == 0
    assert (c, f) == (w["col_min"] * a, -w["row_min"] * a)

    # the PROJ string projects pixel corners where the CRS does; the corners are the footprint
    from pyproj import CRS, Transformer

    assert CRS.from_user_input(grid["proj4"]).equals(CRS.from_user_input(w["crs"]))
    to_3857 = Transformer.from_crs(grid["proj4"], "EPSG:3857", always_xy=True)
    for name, (col, row) in {"top_left": (0, 0), "bottom_right": (64, 64)}.items():
        x, y = to_3857.transform(c + col * a, f + row * e)
        assert np.allclose(grid["corners_3857"][name], [x, y], atol=1e-3), name
    xs, ys = transform(w["crs"], "EPSG:3857", [c + 64 * a], [f])
    assert np.allclose(grid["corners_3857"]["top_right"], [xs[0], ys[0]], atol=1e-3)

    # reading needs the project's read permission
    assert client.get(f"/api/v1/windows/{w['id']}/grid").status_code == 401
    assert client.get("/api/v1/windows/999999/grid", headers=ADMIN).status_code == 404


def test_the_task_registry_says_which_tasks_paint_masks(client):
    from earthplat.tasks import TASKS

    r = client.get("/api/v1/tasks", headers=ADMIN)
    assert r.status_code == 200, r.text
    tasks = {t["name"]: t for t in r.json()}
    assert set(tasks) == set(TASKS)
    assert [n for n, t in tasks.items() if t["pixel_classes"]] == ["segmentation"]
    assert tasks["classification"]["per_window"] and tasks["classification"]["class_task"]
    assert client.get("/api/v1/tasks").status_code == 401
