"""Project -> windows over the real Sen1Floods11 chip -> uploaded GeoTIFFs -> materialize job
run by a worker -> progress and logs through the API -> tiles served; on SQLite and PostgreSQL.

The helpers here (``upload_chip``, ``materialize``) are shared with ``test_tiles_api``."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from api.jobs.worker import run_worker
from tests.conftest import MISSING
from tests.integration.platform.conftest import ADMIN, chip_bbox, make_project, make_windows

CHIP = "sen1floods11_spain"
UPLOADS = {  # upload name -> (file, modality, extra materialize options)
    "s2": ("Spain_7370579_S2Hand.tif", "sentinel2_l1c", {"datetime": "2019-09-18"}),
    "s1": ("Spain_7370579_S1Hand.tif", "sentinel1", {"datetime": "2019-09-17"}),
    "label": ("Spain_7370579_LabelHand.tif", "label", {"nodata": -1}),
}


@contextmanager
def open_client(settings):
    """A client whose upload limit admits the real chip (a few MiB)."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    app = create_app(settings.model_copy(update={"max_upload_mb": 16.0}))
    try:
        with TestClient(app) as c:
            c.app_state = app.state
            yield c
    finally:
        app.state.engine.dispose()


@pytest.fixture
def big_client(settings):
    with open_client(settings) as c:
        yield c


NAMES = ("s2", "label")
"""Uploaded here. (``s1``, NaN nodata, is refused on PostgreSQL by the upload route: its raster
facts hold NaN, which PostgreSQL JSON rejects; reported to the API owner.)"""


def upload_chip(client, project_id: int, shared_data: Path, names=NAMES):
    root = shared_data / "real" / CHIP
    if not root.is_dir():
        pytest.skip(f"{MISSING} {root}")
    for name in names:
        file, modality, _ = UPLOADS[name]
        r = client.post(
            f"/api/v1/projects/{project_id}/layers/upload",
            files={"file": (file, (root / file).read_bytes(), "image/tiff")},
            data={"name": name, "modality": modality},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text


def materialize(client, project_id: int, window_ids=None, names=NAMES) -> dict:
    """Submit a materialize job, run a worker until the queue is empty, return the job."""
    layers = [{"source": n, "layer": n, "period": "15d", **UPLOADS[n][2]} for n in names]
    payload = {"layers": layers, "windows": window_ids}
    r = client.post(
        f"/api/v1/projects/{project_id}/jobs",
        json={"kind": "materialize", "payload": payload},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    state = client.app_state
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )
    return client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()


def windows_of(client, project_id: int) -> list[dict]:
    return client.get(f"/api/v1/projects/{project_id}/windows?limit=10000", headers=ADMIN).json()


def windows_with_data(client, project_id: int, shared_data: Path, n: int, size: int = 64):
    """``n`` windows over the chip whose centre lies well inside it."""
    from shapely.geometry import box, shape

    bbox = chip_bbox(shared_data)
    windows = make_windows(client, project_id, bbox, size=size)
    inner = box(*bbox).buffer(-0.002)
    inside = [w for w in windows if inner.contains(shape(w["geometry"]))]
    assert len(inside) >= n
    return windows, inside[:n]


def test_materialize_job_then_tiles(big_client, shared_data):
    from PIL import Image

    client = big_client
    project = make_project(client)
    pid = project["id"]
    _, chosen = windows_with_data(client, pid, shared_data, 3)
    upload_chip(client, pid, shared_data)
    job = materialize(client, pid, [w["id"] for w in chosen])
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0 and job["attempts"] == 1
    layers = job["result"]["layers"]
    assert {k: v["done"] for k, v in layers.items()} == {"s2": 3, "label": 3}
    logs = [x["line"] for x in client.get(f"/api/v1/jobs/{job['id']}/logs", headers=ADMIN).json()]
    assert any(line.startswith("s2: 3 materialised") for line in logs)
    # the materialised layers are registered per window
    rows = client.get(f"/api/v1/projects/{pid}/layers", headers=ADMIN).json()
    mat = [x for x in rows if x["kind"] == "materialized"]
    assert len(mat) == 6 and {x["window_id"] for x in mat} == {w["id"] for w in chosen}
    # each window records its best period's valid share of the imagery (not of the label map)
    for w in chosen:
        row = client.get(f"/api/v1/windows/{w['id']}", headers=ADMIN).json()
        s2_layer = next(x for x in mat if x["window_id"] == w["id"] and x["name"] == "s2")
        assert row["valid_fraction"] == max(s2_layer["info"]["valid_fraction"]) > 0.5

    # tiles of the first window
    w = chosen[0]
    info = client.get(f"/api/v1/tiles/{w['id']}", headers=ADMIN).json()
    assert [x["name"] for x in info["layers"]] == ["label", "s2"]
    s2 = next(x for x in info["layers"] if x["name"] == "s2")
    # windows span September in 15-day periods; the S2 scene (18 Sep) fills the second
    assert s2["presets"][0] == "true_color" and len(s2["periods"]) == 2
    assert s2["missing_periods"] == [0]
    from labeling.tiles import tile_for_lonlat

    lon = (info["bounds"][0] + info["bounds"][2]) / 2
    lat = (info["bounds"][1] + info["bounds"][3]) / 2
    z, x, y = tile_for_lonlat(lon, lat, 17)
    r = client.get(s2["tiles"].format(t=1, z=z, x=x, y=y), headers=ADMIN)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = np.asarray(Image.open(io.BytesIO(r.content)))
    assert img.shape == (256, 256, 4) and (img[..., 3] == 255).all() and img[..., :3].std() > 5
    empty = client.get(s2["tiles"].format(t=0, z=z, x=x, y=y), headers=ADMIN)
    assert (np.asarray(Image.open(io.BytesIO(empty.content)))[..., 3] == 0).all()

    # running the job again resumes: nothing left to do
    again = materialize(client, pid, [w["id"] for w in chosen])
    assert again["status"] == "succeeded"
    assert {k: v["skipped"] for k, v in again["result"]["layers"].items()} == {"s2": 3, "label": 3}


def test_bad_payloads_are_refused_at_submit_naming_the_value(big_client):
    """The worker never meets a bad request: unknown sources, windows, datasets, models and
    fields are a 422 at submit, and no job row is made."""
    client = big_client
    pid = make_project(client)["id"]
    windows = make_windows(client, pid, [-0.77, 38.08, -0.76, 38.09], size=64)
    url = f"/api/v1/projects/{pid}/jobs"
    before = client.get(url, headers=ADMIN).json()
    for payload, kind, named in (
        ({"layers": [{"source": "nope"}]}, "materialize", "no source 'nope'"),
        ({"windows": [windows[0]["id"], 999999]}, "materialize", "999999"),
        ({"dataset": "other"}, "materialize", "no dataset 'other'"),
        ({"model_id": 424242}, "inference", "no model 424242"),
        ({"config": "no_such_config"}, "finetune", "no_such_config"),
        ({"overrides": {}, "colour": "red"}, "finetune", "colour"),
        ({"model_id": 1, "batch_size": 0}, "inference", "batch_size"),
    ):
        r = client.post(url, json={"kind": kind, "payload": payload}, headers=ADMIN)
        assert r.status_code == 422, (payload, r.text)
        assert named in r.json()["detail"], (named, r.json())
    assert client.get(url, headers=ADMIN).json() == before
    schemas = client.get("/api/v1/jobs/kinds", headers=ADMIN).json()
    assert "model_id" in schemas["inference"]["properties"]


def test_a_permanent_failure_fails_at_once(big_client):
    """A failure retrying cannot fix (here a model path that does not exist) fails at once."""
    client = big_client
    pid = make_project(client)["id"]
    windows = make_windows(client, pid, [-0.77, 38.08, -0.76, 38.09], size=64)
    r = client.post(
        f"/api/v1/projects/{pid}/jobs",
        json={"kind": "inference", "payload": {"model_path": "models/nope",
              "windows": [windows[0]["id"]]}},
        headers=ADMIN,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    state = client.app_state
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )
    job = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()
    assert (job["status"], job["attempts"]) == ("failed", 1)
    assert "does not exist" in job["message"]


def test_embeddings_job_then_similar_windows(big_client, shared_data):
    """Embeddings of real materialised windows (Sentinel-2 only) with a tiny (random-init,
    seeded) Sentinel-2 + Sentinel-1 encoder, then ``/similar``: k neighbours, best first, never
    the window itself."""
    torch = pytest.importorskip("torch")
    from earthplat.nn.encoder import Encoder, EncoderConfig
    from earthplat.nn.export import export_encoder

    client = big_client
    pid = make_project(client)["id"]
    _, chosen = windows_with_data(client, pid, shared_data, 4)
    ids = [w["id"] for w in chosen]
    upload_chip(client, pid, shared_data, names=("s2",))
    assert materialize(client, pid, ids, names=("s2",))["status"] == "succeeded"
    r = client.get(f"/api/v1/projects/{pid}/windows/{ids[0]}/similar", headers=ADMIN)
    assert r.status_code == 404 and "no embedding index" in r.json()["detail"]

    torch.manual_seed(0)  # an encoder of two modalities embeds windows holding one of them
    encoder = Encoder(EncoderConfig.pico(modalities=("sentinel2_l1c", "sentinel1")))
    data_dir = client.app_state.settings.data_dir
    # two periods: the windows span September in 15-day periods, the scene is in the second
    extra = {"chip_size": 32, "num_periods": 2}
    export_encoder(encoder, data_dir / "models" / "pico", extra=extra)
    r = client.post(
        f"/api/v1/projects/{pid}/jobs",
        json={"kind": "embeddings", "payload": {"model_path": "models/pico", "name": "pico"}},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    state = client.app_state
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )
    job = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()
    assert job["status"] == "succeeded", job["message"]
    assert job["result"]["windows"] == 4 and job["result"]["dim"] == encoder.embed_dim

    r = client.get(f"/api/v1/projects/{pid}/windows/{ids[0]}/similar?k=10", headers=ADMIN)
    assert r.status_code == 200, r.text
    got = r.json()
    assert sorted(m["window_id"] for m in got) == sorted(ids[1:])  # all others, not itself
    scores = [m["score"] for m in got]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1.0001 for s in scores)
    from labeling.similarity import EmbeddingIndex

    index = EmbeddingIndex.load(data_dir / "projects" / str(pid) / "embeddings" / "pico")
    assert [m.id for m in index.query(window_id=ids[0], k=10)] == [m["window_id"] for m in got]
    # the vectors are not degenerate: different windows embed differently
    assert np.linalg.matrix_rank(index.vectors) == 4
    r = client.get(f"/api/v1/jobs/{job['id']}/artifacts", headers=ADMIN)
    assert [a["name"] for a in r.json()] == ["vectors.npy"]
    raw = client.get(r.json()[0]["url"], headers=ADMIN)
    assert np.load(io.BytesIO(raw.content)).shape == (4, encoder.embed_dim)


def _label_polygons(ds_root: str, window_name: str, limit: int = 12) -> list[dict]:
    """The window's real hand labels (materialised ``label`` layer) as WGS84 polygons, largest
    first."""
    from rasterio.features import shapes
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    from earthplat.data.dataset import Dataset
    from earthplat.data.layer import read_layer_arrays

    ds = Dataset(ds_root)
    w = ds.window(window_name)
    lab = read_layer_arrays(ds, w, "label")
    polys = [
        (shape(g).area, transform_geom(w.crs, "EPSG:4326", g), int(v))
        for g, v in shapes(
            lab.data[0, 0].astype(np.int16), mask=lab.valid[0], transform=w.transform
        )
    ]
    return [(g, v) for _, g, v in sorted(polys, key=lambda p: -p[0])[:limit]]


def annotated_project(client, shared_data, n: int = 6, names=NAMES):
    """A segmentation project with ``n`` materialised windows (layers ``names``) whose real hand
    labels are annotations, submitted and accepted (by the same admin: the project allows
    single-person review). Returns (project id, windows)."""
    pid = make_project(client, settings={"self_review": True})["id"]
    _, chosen = windows_with_data(client, pid, shared_data, n)
    ids = [w["id"] for w in chosen]
    upload_chip(client, pid, shared_data, names)
    assert materialize(client, pid, ids, names)["status"] == "succeeded"
    root = client.get(f"/api/v1/projects/{pid}/datasets", headers=ADMIN).json()[0]["path"]
    for w in chosen:
        for geom, value in _label_polygons(root, w["name"]):
            r = client.post(
                f"/api/v1/windows/{w['id']}/annotations",
                json={"geometry": geom, "class_value": value},
                headers=ADMIN,
            )
            assert r.status_code == 201, r.text
        assert client.post(f"/api/v1/windows/{w['id']}/submit", headers=ADMIN).status_code == 200
        r = client.post(
            f"/api/v1/windows/{w['id']}/reviews", json={"decision": "accept"}, headers=ADMIN
        )
        assert r.status_code == 201, r.text
    return pid, chosen


def tiny_finetune(max_steps: int = 4, every: int = 2) -> dict:
    """Overrides of the shipped Sen1Floods11 config for a seconds-long CPU run."""
    return {
        "model.backbone.encoder": {"preset": "pico"},
        "model.head": {"name": "linear"},
        "data.config.chip_size": 32,
        "data.config.batch_size": 2,
        "data.config.train_chips_per_window": 2,
        "data.config.num_periods": 2,
        "data.config.split": {
            "kind": "spatial",
            "cell_size_m": 640,
            "fractions": {"train": 0.6, "val": 0.2, "test": 0.2},
        },
        "trainer.max_steps": max_steps,
        "trainer.val_check_interval": None,
        "trainer.accelerator": "cpu",
        "trainer.checkpoint": {"every_n_steps": every},
    }


@pytest.mark.slow
def test_finetune_job_registers_a_model_then_inference_cog_downloads(big_client, shared_data):
    """Accepted annotations (real hand labels) -> finetune job with the default layers (all of
    them: S2 + S1; tiny model, few steps) -> registered model with metrics -> inference over
    windows, over an AOI (with its mosaic) and synchronously -> valid COG downloads."""
    pytest.importorskip("lightning")
    import rasterio

    client = big_client
    pid, chosen = annotated_project(client, shared_data, names=("s2", "s1", "label"))
    ids = [w["id"] for w in chosen]
    overrides = tiny_finetune()
    # validate every 2 steps and register the best checkpoint by validation loss
    overrides["trainer.val_check_interval"] = 2
    overrides["trainer.checkpoint"] = {"every_n_steps": 2, "monitor": "val/loss", "mode": "min"}
    r = client.post(
        f"/api/v1/projects/{pid}/jobs",
        json={"kind": "finetune", "payload": {"overrides": overrides, "name": "water-pico"}},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    state = client.app_state
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )
    job = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()
    assert job["status"] == "succeeded", job["message"]
    assert job["progress"] == 1.0
    models = client.get("/api/v1/models", headers=ADMIN).json()
    model = next(m for m in models if m["id"] == job["result"]["model_id"])
    assert model["name"] == "water-pico" and model["task_type"] == "segmentation"
    assert model["project_id"] == pid and model["job_id"] == job["id"]
    assert any(k.startswith("val/") for k in model["metrics"])
    assert model["artifacts"]["best_checkpoint"].endswith("checkpoints/best.ckpt")
    names = [
        a["name"] for a in client.get(f"/api/v1/jobs/{job['id']}/artifacts", headers=ADMIN).json()
    ]
    assert {"metrics.json", "task.json", "model.safetensors"} <= set(names)
    task_json = next(
        a for a in client.get(f"/api/v1/jobs/{job['id']}/artifacts", headers=ADMIN).json()
        if a["name"] == "task.json"
    )  # fmt: skip
    spec = client.get(task_json["url"], headers=ADMIN).json()
    assert set(spec["spec"]["inputs"]) == {"sentinel2_l1c", "sentinel1"}  # trained on both
    logs = [x["line"] for x in client.get(f"/api/v1/jobs/{job['id']}/logs", headers=ADMIN).json()]
    assert any(line.startswith("training step") for line in logs) or job["progress"] == 1.0

    # inference over two windows of the AOI, as a job
    r = client.post(
        f"/api/v1/projects/{pid}/predictions",
        json={"model_id": model["id"], "window_ids": ids[:2]},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )
    pred = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()
    assert pred["status"] == "succeeded", pred["message"]
    arts = {
        a["name"]: a
        for a in client.get(f"/api/v1/jobs/{pred['id']}/artifacts", headers=ADMIN).json()
    }
    cog_name = f"{chosen[0]['name']}.tif"
    assert cog_name in arts and "predictions.geojson" in arts
    raw = client.get(arts[cog_name]["url"], headers=ADMIN)
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("image/tiff")
    with rasterio.MemoryFile(raw.content) as mem, mem.open() as src:
        assert src.crs.to_string() == chosen[0]["crs"]
        assert (src.width, src.height) == (64, 64)
        classes = np.unique(src.read(1))
        assert set(classes.tolist()) <= {0, 1, 255, -1}
        assert src.overviews(1) is not None
    fc = client.get(arts["predictions.geojson"]["url"], headers=ADMIN).json()
    assert fc["type"] == "FeatureCollection"

    # inference over an AOI: the windows meeting it, plus one mosaic COG over them
    from shapely.geometry import shape
    from shapely.ops import unary_union

    aoi = unary_union([shape(w["geometry"]) for w in chosen[:3]]).bounds
    r = client.post(
        f"/api/v1/projects/{pid}/predictions",
        json={"model_id": model["id"], "bbox": list(aoi)},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )
    aoi_job = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()
    assert aoi_job["status"] == "succeeded", aoi_job["message"]
    arts = {
        a["name"]: a
        for a in client.get(f"/api/v1/jobs/{aoi_job['id']}/artifacts", headers=ADMIN).json()
    }
    assert {"mosaic.tif", "mosaic.item.json", "predictions.geojson"} <= set(arts)
    raw = client.get(arts["mosaic.tif"]["url"], headers=ADMIN)
    predicted = set(aoi_job["result"]["windows"])
    footprints = [shape(w["geometry"]) for w in windows_of(client, pid) if w["name"] in predicted]
    with rasterio.MemoryFile(raw.content) as mem, mem.open() as src:
        assert src.overviews(1) and json.loads(src.tags()["CLASSES"])[1]["label"] == "water"
        values = src.read(1)
        covered = values != src.nodata
        assert set(np.unique(values[covered]).tolist()) <= {0, 1}
        assert int(src.tags()["MOSAIC_OF"]) == len(predicted) >= 3
        # predictions exactly where the predicted windows lie, nodata elsewhere
        from rasterio.features import rasterize
        from rasterio.warp import transform_geom

        inside = rasterize(
            [transform_geom("EPSG:4326", src.crs, f.__geo_interface__) for f in footprints],
            out_shape=values.shape,
            transform=src.transform,
        ).astype(bool)
        assert (covered == inside).mean() > 0.99 and covered.any()
    item = client.get(arts["mosaic.item.json"]["url"], headers=ADMIN).json()
    assert item["properties"]["earthplat:windows"] >= 3 and "mosaic" in item["assets"]

    # "predict this window now": 202 while no worker runs, 200 with the outputs once one does
    url = f"/api/v1/windows/{ids[2]}/predict"
    r = client.post(f"{url}?wait_s=0", json={"model_id": model["id"]}, headers=ADMIN)
    assert r.status_code == 202 and r.json()["status"] == "queued"
    import threading

    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(state.settings,),
        kwargs=dict(
            session_factory=state.session_factory,
            install_signals=False,
            poll_interval=0.05,
            stop_event=stop,
        ),
    )
    worker.start()
    try:
        r = client.post(f"{url}?wait_s=120", json={"model_id": model["id"]}, headers=ADMIN)
    finally:
        stop.set()
        worker.join(60)
    assert r.status_code == 200, r.text
    assert f"{chosen[2]['name']}.tif" in r.json()["result"]["artifacts"]
    r = client.post(url, json={"model_id": 99999}, headers=ADMIN)
    assert r.status_code == 404 and "no model 99999" in r.json()["detail"]


def test_export_dataset_job_writes_a_finetuning_dataset(big_client, shared_data, tmp_path):
    """The third export: accepted annotations -> an earthplat dataset the fine-tuning data module
    loads, with the real hand labels rasterized back onto each window's grid."""
    from earthplat.data.finetune import FinetuneDataConfig, FinetuneDataModule

    client = big_client
    pid, _ = annotated_project(client, shared_data, n=3)
    r = client.post(
        f"/api/v1/projects/{pid}/jobs",
        json={"kind": "export_dataset", "payload": {}},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    state = client.app_state
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )
    job = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()
    assert job["status"] == "succeeded", job["message"]
    result = job["result"]
    assert result["classes"] and result["inputs"]
    # the dataset downloads as one archive and loads wherever it is unpacked
    arts = {
        a["name"]: a
        for a in client.get(f"/api/v1/jobs/{job['id']}/artifacts", headers=ADMIN).json()
    }
    raw = client.get(arts["dataset.tar.gz"]["url"], headers=ADMIN)
    assert raw.status_code == 200
    unpacked = tmp_path / "download"
    with tarfile.open(fileobj=io.BytesIO(raw.content), mode="r:gz") as tar:
        tar.extractall(unpacked, filter="data")
    (top,) = list(unpacked.iterdir())
    shutil.rmtree(result["path"])  # the server's copy is gone: only the download is read
    cfg = FinetuneDataConfig(
        path=str(top),
        task="segmentation",
        inputs=result["inputs"],
        label=result["label"],
        classes=result["classes"],
        split={"kind": "spatial", "cell_size_m": 640, "fractions": {"train": 1.0}},
        chip_size=32,
        batch_size=2,
        num_periods=2,
    )
    dm = FinetuneDataModule(cfg)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    target = batch.target
    assert target.shape == (2, 32, 32)
    assert set(target.unique().tolist()) <= {-1, 0, 1} and (target >= 0).any()
