"""Platform fixtures: every database test runs on SQLite and on PostgreSQL.

``db_url`` is parametrised: ``sqlite`` (a file in the test's tmp dir) and ``postgres`` (marker
``postgres``): the server at 127.0.0.1:5432 (user postgres, trust auth, database ``test``, or
``EARTHPLAT_TEST_POSTGRES``), each test in its own schema ``test_<uuid>`` selected through the
URL's ``options=-csearch_path=...`` and dropped afterwards. An unreachable server skips with a
``missing component:`` reason (a failure under CI).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import MISSING, REPO

PG_DSN = os.environ.get(
    "EARTHPLAT_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ADMIN_KEY = "ep_test_admin_key_0123456789abcdef"
CLASSES = [
    {"value": 0, "label": "land", "color": "#00aa00"},
    {"value": 1, "label": "water", "color": "#0000ff"},
]
SPAIN_CHIP = "sen1floods11_spain/Spain_7370579_S2Hand.tif"


def _pg_connect():
    import psycopg

    try:
        return psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as e:
        pytest.skip(f"{MISSING} PostgreSQL at {PG_DSN} is unreachable ({e})".splitlines()[0])


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A SQLAlchemy URL bound to a fresh schema, dropped on exit."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    conn = _pg_connect()
    conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'earthplat.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def settings(db_url: str, data_dir: Path):
    from api.settings import Settings

    return Settings(data_dir=data_dir, database_url=db_url, admin_key=ADMIN_KEY, max_upload_mb=4.0)


@pytest.fixture
def app(settings):
    from api.main import create_app

    app = create_app(settings)
    yield app
    app.state.engine.dispose()


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ADMIN = auth(ADMIN_KEY)


def make_user(client, name: str, *, project_id: int | None = None, role: str | None = None):
    """Create a user (as admin) with a key and optionally a project role; returns
    ``(user_id, headers)``."""
    r = client.post("/api/v1/users", json={"name": name}, headers=ADMIN)
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    r = client.post(f"/api/v1/users/{user_id}/keys", json={}, headers=ADMIN)
    assert r.status_code == 201, r.text
    headers = auth(r.json()["key"])
    if project_id is not None and role is not None:
        r = client.put(
            f"/api/v1/projects/{project_id}/members/{user_id}", json={"role": role}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
    return user_id, headers


def make_project(
    client, name: str = "floods", task_type: str = "segmentation", settings: dict | None = None
) -> dict:
    r = client.post(
        "/api/v1/projects",
        json={
            "name": name,
            "task_type": task_type,
            "classes": CLASSES,
            "sensors": ["sentinel2_l2a"],
            "start": "2019-01-01",
            "end": "2020-01-01",
            "settings": settings or {},
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return r.json()


def chip_bbox(shared_data: Path) -> list[float]:
    """The WGS84 bbox of the real Sen1Floods11 chip (Spain)."""
    import rasterio
    from rasterio.warp import transform_bounds

    path = shared_data / "real" / SPAIN_CHIP
    if not path.is_file():
        pytest.skip(f"{MISSING} {path}")
    with rasterio.open(path) as src:
        return list(transform_bounds(src.crs, "EPSG:4326", *src.bounds))


def make_windows(client, project_id: int, bbox: list[float], size: int = 256) -> list[dict]:
    r = client.post(
        f"/api/v1/projects/{project_id}/windows/aoi",
        json={"bbox": bbox, "start": "2019-09-01", "end": "2019-10-01", "size": size},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return r.json()["windows"]


def centre(window: dict) -> dict:
    """A GeoJSON point at the window's centre."""
    from shapely.geometry import shape

    c = shape(window["geometry"]).centroid
    return {"type": "Point", "coordinates": [c.x, c.y]}


# --- a real server over loopback -------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(db_url: str, data_dir: Path, *, timeout: float = 60.0) -> Iterator[str]:
    """uvicorn serving ``create_app`` in a subprocess on a free loopback port; yields its URL."""
    port = free_port()
    env = dict(
        os.environ,
        EARTHPLAT_DATABASE_URL=db_url,
        EARTHPLAT_DATA_DIR=str(data_dir),
        EARTHPLAT_ADMIN_KEY=ADMIN_KEY,
        PYTHONPATH=str(REPO),
    )
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {proc.returncode}")
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not come up")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
