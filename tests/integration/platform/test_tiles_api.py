"""The tile endpoints over a real materialised window: who may read, clear 404s, presets and
label colours from the project's class schema; on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from labeling.tiles import tile_for_lonlat
from tests.integration.platform.conftest import ADMIN, CLASSES, make_project, make_user
from tests.integration.platform.test_job_flow import (
    materialize,
    open_client,
    upload_chip,
    windows_with_data,
)


@pytest.fixture
def served(settings, shared_data):
    with open_client(settings) as client:
        yield _serve(client, shared_data)


def _serve(client, shared_data):
    pid = make_project(client)["id"]
    _, chosen = windows_with_data(client, pid, shared_data, 1)
    upload_chip(client, pid, shared_data)
    job = materialize(client, pid, [chosen[0]["id"]])
    assert job["status"] == "succeeded", job
    info = client.get(f"/api/v1/tiles/{chosen[0]['id']}", headers=ADMIN).json()
    lon = (info["bounds"][0] + info["bounds"][2]) / 2
    lat = (info["bounds"][1] + info["bounds"][3]) / 2
    return client, pid, chosen[0], tile_for_lonlat(lon, lat, 17)


def _img(r):
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content)))


def test_access_and_clear_errors(served):
    """A viewer reads tiles, an outsider and an anonymous caller do not; unknown window, layer,
    period, preset and tile each get a message that names the problem."""
    client, pid, w, (z, x, y) = served
    _, viewer = make_user(client, "vera", project_id=pid, role="viewer")
    _, outsider = make_user(client, "otto")
    url = f"/api/v1/tiles/{w['id']}/s2/1/{z}/{x}/{y}.png"
    assert _img(client.get(url, headers=viewer))[..., 3].min() == 255
    assert client.get(url, headers=outsider).status_code == 403
    assert client.get(url).status_code == 401
    r = client.get(f"/api/v1/tiles/999999/s2/0/{z}/{x}/{y}.png", headers=ADMIN)
    assert r.status_code == 404 and "no window 999999" in r.json()["detail"]
    r = client.get(f"/api/v1/tiles/{w['id']}/dem/0/{z}/{x}/{y}.png", headers=ADMIN)
    assert r.status_code == 404 and "no layer 'dem'" in r.json()["detail"]
    assert "label, s2" in r.json()["detail"]
    r = client.get(f"/api/v1/tiles/{w['id']}/s2/5/{z}/{x}/{y}.png", headers=ADMIN)
    assert r.status_code == 404 and "no t=5" in r.json()["detail"]
    r = client.get(f"/api/v1/tiles/{w['id']}/s2/1/{z}/{x}/{y}.png?preset=nope", headers=ADMIN)
    assert r.status_code == 422 and "no composite 'nope'" in r.json()["detail"]
    r = client.get(f"/api/v1/tiles/{w['id']}/s2/1/3/99/0.png", headers=ADMIN)
    assert r.status_code == 422


def test_presets_label_colours_and_transparency(served):
    client, _, w, (z, x, y) = served
    base = f"/api/v1/tiles/{w['id']}"
    tiles = {
        p: _img(client.get(f"{base}/s2/1/{z}/{x}/{y}.png?preset={p}", headers=ADMIN))
        for p in ("true_color", "false_color", "swir", "gray")
    }
    assert len({t.tobytes() for t in tiles.values()}) == 4
    far = _img(client.get(f"{base}/s2/1/{z}/{x + 40}/{y}.png", headers=ADMIN))
    assert far.shape == (256, 256, 4) and (far[..., 3] == 0).all()  # outside: transparent
    label = _img(client.get(f"{base}/label/0/{z - 1}/{x // 2}/{y // 2}.png", headers=ADMIN))
    opaque = label[label[..., 3] == 255][:, :3]
    colours = {"#" + bytes(int(v) for v in c).hex() for c in np.unique(opaque, axis=0)}
    assert colours and colours <= {c["color"] for c in CLASSES}
