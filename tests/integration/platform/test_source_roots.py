"""Source roots through the platform, on SQLite and PostgreSQL: a STAC catalogue registered by
path, and the local asset hrefs inside it, must lie under ``EARTHPLAT_SOURCE_ROOTS`` (default:
the data dir and the demo data dir). Registering one outside is a 422 that stores nothing; an
asset outside fails the materialize job at once, before the file is read.

The imagery is a tiny two-band Sentinel-1 GeoTIFF written here, described by a one-item static
catalogue (``write_catalog`` of the unit tests)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from api.jobs.worker import run_worker
from api.settings import Settings, default_demo_data
from tests.integration.platform.conftest import ADMIN, make_project, make_windows
from tests.unit.earthplat.data.test_roots import COLLECTION, LAT, LON, write_catalog

BBOX = [LON - 0.002, LAT - 0.002, LON + 0.002, LAT + 0.002]
"""The windows' area (inside the item's footprint, +- 0.01 deg)."""


def write_s1(path: Path) -> Path:
    """A 2-band (VV, VH) float32 GeoTIFF in UTM 32N at 10 m covering the item's footprint."""
    import rasterio
    from affine import Affine
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds(
        "EPSG:4326", "EPSG:32632", LON - 0.01, LAT - 0.01, LON + 0.01, LAT + 0.01
    )
    width, height = int((right - left) // 10), int((top - bottom) // 10)
    data = np.random.default_rng(0).uniform(0.01, 0.5, (2, height, width)).astype("float32")
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "count": 2, "dtype": "float32", "crs": "EPSG:32632"}
    transform = Affine(10, 0, left, 0, -10, top)
    with rasterio.open(path, "w", width=width, height=height, transform=transform, **profile) as f:
        f.write(data)
        f.descriptions = ("VV", "VH")
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the data dir (and the demo data dir) holding a readable raster."""
    write_s1(tmp_path / "outside" / "s1.tif")
    return tmp_path / "outside"


def register(client, pid: int, url: str, name: str = "cat"):
    return client.post(
        f"/api/v1/projects/{pid}/sources/stac",
        json={"name": name, "url": url, "collection": COLLECTION, "modality": "sentinel1"},
        headers=ADMIN,
    )


def stac_layers(client, pid: int) -> list[dict]:
    r = client.get(f"/api/v1/projects/{pid}/layers", headers=ADMIN)
    return [x for x in r.json() if x["kind"] == "stac"]


def materialize(client, app, pid: int) -> dict:
    """Run a materialize job of the ``cat`` source with one worker pass; the job at its end."""
    payload = {"layers": [{"source": "cat", "layer": "s1", "period": "30d"}], "workers": 1}
    r = client.post(
        f"/api/v1/projects/{pid}/jobs",
        json={"kind": "materialize", "payload": payload},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    state = app.state
    run_worker(
        state.settings, once=True, session_factory=state.session_factory, install_signals=False
    )
    return client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()


def materialized(client, pid: int) -> list[dict]:
    r = client.get(f"/api/v1/projects/{pid}/layers", headers=ADMIN)
    return [x for x in r.json() if x["kind"] == "materialized"]


def test_a_catalogue_outside_the_roots_is_refused_and_nothing_is_stored(
    client, data_dir: Path, outside: Path
):
    pid = make_project(client)["id"]
    cat = write_catalog(outside / "cat", "../../s1.tif")
    for url in ("/etc", "/etc/passwd", "file:///etc/passwd", str(cat), f"{data_dir}/../outside"):
        r = register(client, pid, url)
        assert r.status_code == 422, (url, r.text)
        body = r.json()
        assert url.removeprefix("file://") in body["detail"], body
        assert str(data_dir) in body["detail"] and "outside the folders" in body["detail"]
        assert "EARTHPLAT_SOURCE_ROOTS" in body["fix"] and str(data_dir) in body["fix"]
    assert stac_layers(client, pid) == []


def test_a_catalogue_under_the_roots_materializes(client, app, data_dir: Path):
    pid = make_project(client)["id"]
    write_s1(data_dir / "imagery" / "s1.tif")
    cat = write_catalog(data_dir / "stac", "../../imagery/s1.tif")  # from stac/it/it.json
    r = register(client, pid, f"file://{cat}")
    assert r.status_code == 201, r.text
    windows = make_windows(client, pid, BBOX, size=16)
    job = materialize(client, app, pid)
    assert job["status"] == "succeeded", job["message"]
    assert len(materialized(client, pid)) == len(windows)


def test_an_asset_outside_the_roots_fails_the_job_unread(client, app, data_dir, outside):
    pid = make_project(client)["id"]
    cat = write_catalog(data_dir / "stac", str(outside / "s1.tif"))
    assert register(client, pid, str(cat)).status_code == 201  # the catalogue itself is inside
    make_windows(client, pid, BBOX, size=16)
    job = materialize(client, app, pid)
    assert (job["status"], job["attempts"]) == ("failed", 1), job  # not retried
    message = job["message"]
    assert str(outside / "s1.tif") in message and "outside the folders" in message, message
    assert "EARTHPLAT_SOURCE_ROOTS" in message
    assert materialized(client, pid) == []


def test_configured_roots_widen_the_defaults(settings, data_dir: Path, outside: Path):
    from fastapi.testclient import TestClient

    from api.main import create_app

    roots = f"{outside}{os.pathsep}{data_dir}"
    app = create_app(settings.model_copy(update={"source_roots": roots}))
    try:
        with TestClient(app) as client:
            pid = make_project(client)["id"]
            cat = write_catalog(outside / "cat", "../../s1.tif")
            assert register(client, pid, str(cat)).status_code == 201
            windows = make_windows(client, pid, BBOX, size=16)
            job = materialize(client, app, pid)
            assert job["status"] == "succeeded", job["message"]["message"]
            assert len(materialized(client, pid)) == len(windows)
            r = register(client, pid, "/etc", name="etc")  # still refused: not listed
            assert r.status_code == 422 and str(outside) in r.json()["fix"]
    finally:
        app.state.engine.dispose()


def test_allowed_source_roots_from_the_environment(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EARTHPLAT_SOURCE_ROOTS", raising=False)
    demo = default_demo_data()
    default = [tmp_path / "data"] + ([demo.resolve()] if demo and demo.is_dir() else [])
    assert Settings(data_dir=Path("data")).allowed_source_roots() == default
    monkeypatch.setenv("EARTHPLAT_SOURCE_ROOTS", " ")
    assert Settings(data_dir=Path("data")).allowed_source_roots() == default
    monkeypatch.setenv("EARTHPLAT_SOURCE_ROOTS", f"a,{tmp_path}/b{os.pathsep}~/c")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = [tmp_path / "a", tmp_path / "b", tmp_path / "home" / "c"]
    assert Settings().allowed_source_roots() == expected
    monkeypatch.setenv("EARTHPLAT_DEMO_DATA", str(tmp_path / "demo"))
    (tmp_path / "demo").mkdir()
    monkeypatch.delenv("EARTHPLAT_SOURCE_ROOTS")
    assert Settings(data_dir=tmp_path).allowed_source_roots() == [tmp_path, tmp_path / "demo"]
