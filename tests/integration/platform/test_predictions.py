"""The model loop in the browser, on SQLite and PostgreSQL: a real tiny fine-tune on the real
Sen1Floods11 chip, inference over windows and over an AOI, then prediction layers as tiles,
pre-labels (replace, keep edits, claims), provenance in the export, and likely-wrong labels.

One fine-tune per database (a module-scoped setup): the tests read its jobs and mostly touch
windows of their own.
"""

from __future__ import annotations

import io
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from api.jobs.worker import run_worker
from tests.integration.platform.conftest import (
    ADMIN,
    ADMIN_KEY,
    CLASSES,
    chip_bbox,
    make_project,
    make_user,
    make_windows,
    postgres_schema,
)
from tests.integration.platform.test_job_flow import (
    _label_polygons,
    annotated_project,
    materialize,
    open_client,
    tiny_finetune,
)

COLOURS = {tuple(int(c["color"][i : i + 2], 16) for i in (1, 3, 5)): c["value"] for c in CLASSES}


@dataclass
class Loop:
    client: object
    data_dir: Path
    pid: int
    model_id: int
    job: dict
    """Inference over the accepted windows and the extra ones (the newest job)."""
    aoi_job: dict
    """Inference over an AOI (with its mosaic), older."""
    accepted: list[dict]
    flipped: dict
    """An accepted window whose labels are the real ones with the classes swapped."""
    open_windows: list[dict]
    """Materialised, predicted, still unlabelled windows."""
    root: str


def _run(client) -> None:
    state = client.app_state
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )


def _job(client, pid: int, kind: str, payload: dict) -> dict:
    r = client.post(
        f"/api/v1/projects/{pid}/jobs", json={"kind": kind, "payload": payload}, headers=ADMIN
    )
    assert r.status_code == 201, r.text
    _run(client)
    job = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()
    assert job["status"] == "succeeded", job["message"]
    return job


def _predict(client, pid: int, body: dict) -> dict:
    r = client.post(f"/api/v1/projects/{pid}/predictions", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    _run(client)
    job = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()
    assert job["status"] == "succeeded", job["message"]
    return job


def _label(client, window: dict, root: str, *, flip: bool = False) -> None:
    """The window's real hand labels as annotations (classes swapped with ``flip``), submitted
    and accepted."""
    for geom, value in _label_polygons(root, window["name"]):
        r = client.post(
            f"/api/v1/windows/{window['id']}/annotations",
            json={"geometry": geom, "class_value": 1 - value if flip else value},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
    assert client.post(f"/api/v1/windows/{window['id']}/submit", headers=ADMIN).status_code == 200
    r = client.post(
        f"/api/v1/windows/{window['id']}/reviews", json={"decision": "accept"}, headers=ADMIN
    )
    assert r.status_code == 201, r.text


@contextmanager
def _database(kind: str, tmp: Path):
    if kind == "sqlite":
        with nullcontext(f"sqlite:///{tmp / 'earthplat.db'}") as url:
            yield url
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def loop(request, tmp_path_factory, shared_data):
    """Per database: 6 accepted windows with the real hand labels -> a tiny fine-tune -> 3 more
    materialised windows (one labelled with swapped classes and accepted) -> inference over an
    AOI inside the first accepted window (its mosaic), then over all 9 windows."""
    pytest.importorskip("lightning")
    from shapely.geometry import box, shape

    from api.settings import Settings

    tmp = tmp_path_factory.mktemp(f"loop-{request.param}")
    with pytest.MonkeyPatch.context() as mp, _database(request.param, tmp) as url:
        mp.setenv("EARTHPLAT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        data_dir = tmp / "data"
        data_dir.mkdir()
        settings = Settings(data_dir=data_dir, database_url=url, admin_key=ADMIN_KEY)
        with open_client(settings) as client:
            pid, accepted = annotated_project(client, shared_data)
            job = _job(client, pid, "finetune", {"overrides": tiny_finetune(), "name": "pico"})
            model_id = job["result"]["model_id"]
            # three more windows well inside the chip, not trained on
            inner = box(*chip_bbox(shared_data)).buffer(-0.002)
            taken = {w["id"] for w in accepted}
            extra = [
                w
                for w in client.get(
                    f"/api/v1/projects/{pid}/windows?limit=1000", headers=ADMIN
                ).json()
                if w["id"] not in taken and inner.contains(shape(w["geometry"]))
            ][:3]
            assert len(extra) == 3
            assert materialize(client, pid, [w["id"] for w in extra])["status"] == "succeeded"
            root = client.get(f"/api/v1/projects/{pid}/datasets", headers=ADMIN).json()[0]["path"]
            flipped, open_windows = extra[0], extra[1:]
            _label(client, flipped, root, flip=True)
            # an AOI inside the first accepted window: it alone is predicted (and mosaicked)
            aoi = shape(accepted[0]["geometry"]).buffer(-0.001).bounds
            aoi_job = _predict(client, pid, {"model_id": model_id, "bbox": list(aoi)})
            ids = [w["id"] for w in accepted + extra]
            pred = _predict(client, pid, {"model_id": model_id, "window_ids": ids})
            yield Loop(
                client, data_dir, pid, model_id, pred, aoi_job, accepted, flipped, open_windows,
                root,
            )  # fmt: skip


def _png(response) -> np.ndarray:
    from PIL import Image

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGBA"))


def _centre_tile(window: dict, z: int) -> tuple[int, int, int]:
    from shapely.geometry import shape

    from labeling.tiles import tile_for_lonlat

    c = shape(window["geometry"]).centroid
    return tile_for_lonlat(c.x, c.y, z)


def test_tiles_list_the_prediction_layer_and_render_it_in_the_legend_colours(loop):
    client, w = loop.client, loop.open_windows[0]
    info = client.get(f"/api/v1/tiles/{w['id']}", headers=ADMIN).json()
    (layer,) = info["predictions"]  # the AOI job did not predict this window
    assert layer["job_id"] == loop.job["id"] and layer["model_id"] == loop.model_id
    assert layer["model_name"] == "pico" and layer["task_type"] == "segmentation"
    assert layer["kind"] == "classes" and layer["range"] is None and layer["ramp"] is None
    assert [(c["value"], c["label"]) for c in layer["legend"]] == [(0, "land"), (1, "water")]
    assert (
        layer["tiles"]
        == f"/api/v1/tiles/{w['id']}/predictions/{loop.job['id']}/{{z}}/{{x}}/{{y}}.png"
        f"?v={layer['version']}"
    )
    # an accepted window the AOI run predicted too: both jobs, newest first
    both = client.get(f"/api/v1/tiles/{loop.accepted[0]['id']}", headers=ADMIN).json()
    assert [p["job_id"] for p in both["predictions"]] == [loop.job["id"], loop.aoi_job["id"]]

    # the window (640 m) inside one z=15 tile: legend colours inside, transparent around it
    z, x, y = _centre_tile(w, 15)
    img = _png(client.get(layer["tiles"].format(z=z, x=x, y=y), headers=ADMIN))
    opaque = img[..., 3] == 255
    assert set(np.unique(img[..., 3]).tolist()) <= {0, 255}
    assert 0.05 < opaque.mean() < 0.9  # the window, and the transparent rest of the tile
    colours = {tuple(p) for p in img[opaque][:, :3].tolist()}
    assert colours and colours <= set(COLOURS)
    # the tile's colours are the COG's classes, pixel for pixel in proportion
    import rasterio

    cog = loop.data_dir / "jobs" / str(loop.job["id"]) / "windows" / w["name"] / "prediction.tif"
    with rasterio.open(cog) as src:
        band = src.read(1)
    share = float((band == 1).sum() / (band != src.nodata).sum())
    tiled = float(np.all(img[opaque][:, :3] == (0, 0, 255), axis=1).mean())
    assert abs(tiled - share) < 0.1, (tiled, share)
    # far away: a transparent tile, not an error
    img = _png(client.get(layer["tiles"].format(z=15, x=0, y=0), headers=ADMIN))
    assert (img[..., 3] == 0).all()


def test_prediction_tiles_404_with_a_fix(loop):
    client, w = loop.client, loop.open_windows[0]
    url = "/api/v1/tiles/{}/predictions/{}/15/0/0.png"
    r = client.get(url.format(w["id"], 999_999), headers=ADMIN)
    assert r.status_code == 404 and "no job 999999" in r.json()["detail"] and r.json()["fix"]
    finetune = client.get(f"/api/v1/projects/{loop.pid}/jobs", headers=ADMIN).json()
    other_kind = next(j for j in finetune if j["kind"] == "finetune")
    r = client.get(url.format(w["id"], other_kind["id"]), headers=ADMIN)
    assert r.status_code == 404 and "not an inference job" in r.json()["detail"]
    # the AOI job did not predict this window: 404 saying how to predict it
    r = client.get(url.format(w["id"], loop.aoi_job["id"]), headers=ADMIN)
    assert r.status_code == 404 and "has no prediction of window" in r.json()["detail"]
    assert f'"window_ids": [{w["id"]}]' in r.json()["fix"]
    # a window of another project asking for this project's job
    other = make_project(client, name="elsewhere")
    (ow, *_) = make_windows(client, other["id"], [-0.77, 38.08, -0.769, 38.081], size=64)
    r = client.get(url.format(ow["id"], loop.job["id"]), headers=ADMIN)
    assert r.status_code == 404 and f"project {other['id']} has no job" in r.json()["detail"]
    r = client.get(f"/api/v1/tiles/{w['id']}/predictions/{loop.job['id']}/2/9/0.png", headers=ADMIN)
    assert r.status_code == 422


def test_project_predictions_list_and_the_aoi_mosaic(loop):
    client = loop.client
    got = client.get(f"/api/v1/projects/{loop.pid}/predictions", headers=ADMIN).json()
    assert [p["job_id"] for p in got] == [loop.job["id"], loop.aoi_job["id"]]
    full, aoi = got
    assert full["windows"] == 9 and full["mosaic_tiles"] is None
    assert full["kind"] == "classes" and [c["value"] for c in full["legend"]] == [0, 1]
    assert aoi["windows"] == len(loop.aoi_job["result"]["windows"]) == 1
    assert aoi["mosaic_tiles"].startswith(
        f"/api/v1/projects/{loop.pid}/predictions/{loop.aoi_job['id']}/mosaic/{{z}}/{{x}}/{{y}}.png"
        "?v="
    )
    lon0, lat0, lon1, lat1 = aoi["bounds"]
    assert lon0 < lon1 and lat0 < lat1 and -1 < lon0 < 0 and 38 < lat0 < 39
    z, x, y = _centre_tile(loop.accepted[0], 15)
    img = _png(client.get(aoi["mosaic_tiles"].format(z=z, x=x, y=y), headers=ADMIN))
    opaque = img[..., 3] == 255
    assert opaque.any() and {tuple(p) for p in img[opaque][:, :3].tolist()} <= set(COLOURS)
    r = client.get(
        f"/api/v1/projects/{loop.pid}/predictions/{loop.job['id']}/mosaic/15/0/0.png",
        headers=ADMIN,
    )
    assert r.status_code == 404 and "wrote no mosaic" in r.json()["detail"]


def _annotations(client, window_id: int) -> list[dict]:
    r = client.get(f"/api/v1/windows/{window_id}/annotations", headers=ADMIN)
    assert r.status_code == 200
    return r.json()


def _class_shares(features: list[dict], crs: str) -> dict[int, float]:
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    area: dict[int, float] = {}
    for f in features:
        a = shape(transform_geom("EPSG:4326", crs, f["geometry"])).area
        area[f["class_value"]] = area.get(f["class_value"], 0.0) + a
    total = sum(area.values())
    return {k: v / total for k, v in area.items()}


def test_prelabels_replace_keep_human_and_edited_ones_and_export_provenance(loop):
    import rasterio
    from shapely.geometry import shape

    client, w = loop.client, loop.open_windows[0]
    url = f"/api/v1/windows/{w['id']}/prelabels"
    centre = shape(w["geometry"]).centroid
    human = client.post(
        f"/api/v1/windows/{w['id']}/annotations",
        json={"geometry": {"type": "Point", "coordinates": [centre.x, centre.y]},
              "class_value": 1},
        headers=ADMIN,
    )  # fmt: skip
    assert human.status_code == 201, human.text

    r = client.post(url, json={"job_id": loop.job["id"]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["replaced"] == 0 and first["created"]
    footprint = shape(w["geometry"]).buffer(1e-7)
    for a in first["created"]:
        assert a["origin"] == "model" and a["model_id"] == loop.model_id and not a["edited"]
        assert a["geometry"]["type"] == "Polygon" and footprint.contains(shape(a["geometry"]))
    # the polygons cover the predicted classes in their proportions
    cog = loop.data_dir / "jobs" / str(loop.job["id"]) / "windows" / w["name"] / "prediction.tif"
    with rasterio.open(cog) as src:
        band = src.read(1)
        valid = band != src.nodata
    shares = _class_shares(first["created"], w["crs"])
    for value in (0, 1):
        predicted = float((band[valid] == value).mean())
        assert abs(shares.get(value, 0.0) - predicted) < 0.05, (value, shares, predicted)

    # pressing again replaces them: no duplicates
    second = client.post(url, json={"job_id": loop.job["id"]}, headers=ADMIN).json()
    assert second["replaced"] == len(first["created"])
    assert len(second["created"]) == len(first["created"])
    now = _annotations(client, w["id"])
    assert len(now) == len(second["created"]) + 1  # and the human point
    # a person corrects one pre-label: it is edited, and a third press keeps it
    target = second["created"][0]
    r = client.patch(
        f"/api/v1/annotations/{target['id']}",
        json={"version": target["version"], "class_value": 1 - target["class_value"]},
        headers=ADMIN,
    )
    assert r.status_code == 200 and r.json()["edited"] is True, r.text
    third = client.post(url, json={"job_id": loop.job["id"]}, headers=ADMIN).json()
    assert third["replaced"] == len(second["created"]) - 1
    kept = {a["id"]: a for a in _annotations(client, w["id"])}
    assert target["id"] in kept and kept[target["id"]]["edited"] is True
    assert human.json()["id"] in kept and kept[human.json()["id"]]["origin"] == "human"
    assert len(kept) == len(third["created"]) + 2

    # the export says who made each annotation
    fc = client.get(f"/api/v1/projects/{loop.pid}/export/geojson", headers=ADMIN).json()
    mine = {
        f["id"]: f["properties"] for f in fc["features"] if f["properties"]["window"] == w["name"]
    }
    assert mine[human.json()["id"]]["origin"] == "human"
    assert mine[human.json()["id"]]["model_id"] is None
    assert (mine[target["id"]]["origin"], mine[target["id"]]["edited"]) == ("model", True)
    assert mine[target["id"]]["model_id"] == loop.model_id
    fresh = third["created"][0]["id"]
    assert (mine[fresh]["origin"], mine[fresh]["edited"]) == ("model", False)


def test_prelabels_respect_claims_status_and_the_task(loop):
    client = loop.client
    w = loop.open_windows[1]
    _, holder = make_user(client, "holder", project_id=loop.pid, role="labeler")
    _, other = make_user(client, "other", project_id=loop.pid, role="labeler")
    _, viewer = make_user(client, "viewer", project_id=loop.pid, role="viewer")
    assert client.post(f"/api/v1/windows/{w['id']}/claim", headers=holder).status_code == 200
    url = f"/api/v1/windows/{w['id']}/prelabels"
    body = {"job_id": loop.job["id"]}
    r = client.post(url, json=body, headers=other)
    assert r.status_code == 423 and "claimed by holder" in r.json()["detail"], r.text
    assert _annotations(client, w["id"]) == []
    assert client.post(url, json=body, headers=viewer).status_code == 403
    # the holder may
    r = client.post(url, json=body, headers=holder)
    assert r.status_code == 200 and r.json()["created"], r.text
    # an accepted window is frozen: 409
    r = client.post(f"/api/v1/windows/{loop.accepted[0]['id']}/prelabels", json=body, headers=ADMIN)
    assert r.status_code == 409, r.text
    # the AOI job did not predict the window: 404; unknown job: 404
    r = client.post(url, json={"job_id": loop.aoi_job["id"]}, headers=holder)
    assert r.status_code == 404 and r.json()["fix"]
    assert client.post(url, json={"job_id": 999_999}, headers=holder).status_code == 404
    # a project whose predictions are values: 422 naming why
    reg = make_project(client, name="heights", task_type="regression")
    (rw, *_) = make_windows(client, reg["id"], [-0.77, 38.08, -0.769, 38.081], size=64)
    r = client.post(f"/api/v1/windows/{rw['id']}/prelabels", json=body, headers=ADMIN)
    assert r.status_code == 422 and "regression project" in r.json()["detail"], r.text


def test_likely_wrong_ranks_the_flipped_window_first(loop):
    client = loop.client
    url = f"/api/v1/projects/{loop.pid}/likely-wrong"
    got = client.get(url, headers=ADMIN)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["job_id"] == loop.job["id"] and body["model_id"] == loop.model_id
    ranked = body["windows"]
    assert {r["window_id"] for r in ranked} == {w["id"] for w in [*loop.accepted, loop.flipped]}
    assert ranked[0]["window_id"] == loop.flipped["id"], ranked
    assert all(r["status"] == "accepted" and r["labelled_pixels"] > 0 for r in ranked)
    scores = [r["disagreement"] for r in ranked]
    assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] <= scores[0] <= 1
    assert scores[0] > 0.5 and scores[0] > scores[1]
    # an explicit job, a limit
    r = client.get(f"{url}?job_id={loop.job['id']}&limit=2", headers=ADMIN).json()
    assert [x["window_id"] for x in r["windows"]] == [x["window_id"] for x in ranked[:2]]
    # the AOI job predicted accepted windows too, but not the flipped one
    r = client.get(f"{url}?job_id={loop.aoi_job['id']}", headers=ADMIN).json()
    assert loop.flipped["id"] not in {x["window_id"] for x in r["windows"]} and r["windows"]
    # reviewers only; a project without inference: 404 saying what to run
    _, labeler = make_user(client, "lab-lw", project_id=loop.pid, role="labeler")
    assert client.get(url, headers=labeler).status_code == 403
    empty = make_project(client, name="fresh")
    r = client.get(f"/api/v1/projects/{empty['id']}/likely-wrong", headers=ADMIN)
    assert r.status_code == 404 and "window_ids" in r.json()["fix"], r.text
    assert f"/api/v1/projects/{empty['id']}/predictions" in r.json()["fix"]
