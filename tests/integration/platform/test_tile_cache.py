"""The tile render cache through the API, over a real materialised window (the Sen1Floods11
chip), on SQLite and PostgreSQL: hits, ETags and 304s without rendering, new keys after the layer
is rewritten, entries shared by two app instances on one data dir, one-image frames, acquisition
metadata per period, versioned URLs, and unchanged permission checks."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.integration.platform.conftest import ADMIN, make_user
from tests.integration.platform.test_job_flow import open_client
from tests.integration.platform.test_tiles_api import _serve


@pytest.fixture
def served(settings, shared_data):
    with open_client(settings) as client:
        yield _serve(client, shared_data)


def _img(r) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(r.content)))


def _layer(client, window_id: int, name: str = "s2") -> dict:
    info = client.get(f"/api/v1/tiles/{window_id}", headers=ADMIN).json()
    return next(x for x in info["layers"] if x["name"] == name)


def _files(data_dir: Path, window: dict, layer: str = "s2") -> Path:
    (tif,) = data_dir.rglob(f"windows/{window['name']}/{layer}.tif")
    return tif


def _rewrite_layer(tif: Path, factor: float) -> None:
    """Rewrite a layer's data COG with its values scaled, then its JSON, the way materialize
    writes them (a new file moved over the old, the JSON last and atomically)."""
    import rasterio

    with rasterio.open(tif) as src:
        profile, data = src.profile, src.read()
        nodata = src.nodata
    scaled = np.where(data == nodata, data, np.rint(data * factor)).astype(data.dtype)
    tmp = tif.with_name(".rewrite.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(scaled)
    os.replace(tmp, tif)
    meta = tif.with_suffix(".json")
    text = meta.read_text()
    meta.with_name(".rewrite.json").write_text(text)
    os.replace(meta.with_name(".rewrite.json"), meta)


def test_hits_etags_and_304_without_rendering(served, monkeypatch):
    client, _, w, (z, x, y) = served
    layer = _layer(client, w["id"])
    url = f"/api/v1/tiles/{w['id']}/s2/1/{z}/{x}/{y}.png?preset=true_color"
    first = client.get(url, headers=ADMIN)
    second = client.get(url, headers=ADMIN)
    assert first.headers["x-tile-cache"] == "miss" and second.headers["x-tile-cache"] == "hit"
    assert first.content == second.content and _img(second)[..., 3].min() == 255
    tag = first.headers["etag"]
    assert tag == second.headers["etag"] and tag.startswith('"')
    assert first.headers["cache-control"] == "private, no-cache"  # no ?v=: revalidate
    fresh = client.get(f"{url}&v={layer['version']}", headers=ADMIN)
    assert fresh.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert client.get(f"{url}&v=old", headers=ADMIN).headers["cache-control"].endswith("no-cache")
    # another preset is another entry and another ETag
    other = client.get(url.replace("true_color", "swir"), headers=ADMIN)
    assert other.headers["x-tile-cache"] == "miss" and other.headers["etag"] != tag

    # a 304 neither renders nor reads the cached PNG
    import labeling.tiles

    def refuse(*args, **kwargs):
        raise AssertionError("rendered")

    monkeypatch.setattr(labeling.tiles, "render_tile", refuse)
    for lookup in ("get", "peek"):
        monkeypatch.setattr(client.app_state.tile_cache, lookup, refuse)
    r = client.get(url, headers={**ADMIN, "If-None-Match": tag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == tag
    with pytest.raises(AssertionError, match="rendered"):  # another ETag: looked up
        client.get(url, headers={**ADMIN, "If-None-Match": '"nope"'})


def test_rewritten_layer_gets_new_keys_and_new_pixels(served, settings):
    client, _, w, (z, x, y) = served
    before = _layer(client, w["id"])
    url = f"/api/v1/tiles/{w['id']}/s2/1/{z}/{x}/{y}.png?preset=true_color"
    old = client.get(url, headers=ADMIN)
    assert client.get(url, headers=ADMIN).headers["x-tile-cache"] == "hit"
    _rewrite_layer(_files(Path(settings.data_dir), w), 0.5)
    after = _layer(client, w["id"])
    assert after["version"] != before["version"]
    assert f"v={after['version']}" in after["tiles"]
    new = client.get(url, headers=ADMIN)
    assert new.headers["x-tile-cache"] == "miss"  # the old entry is not served
    assert new.headers["etag"] != old.headers["etag"]
    r = client.get(url, headers={**ADMIN, "If-None-Match": old.headers["etag"]})
    assert r.status_code == 200  # the old ETag no longer matches
    darker = _img(new)[..., :3].astype(float).mean()
    assert darker < _img(old)[..., :3].astype(float).mean() - 5


def test_two_apps_on_one_data_dir_share_entries(served, settings):
    client, _, w, (z, x, y) = served
    url = f"/api/v1/tiles/{w['id']}/label/0/{z}/{x}/{y}.png"
    first = client.get(url, headers=ADMIN)
    assert first.headers["x-tile-cache"] == "miss"
    with open_client(settings) as other:  # a second worker: its own memory, the same folder
        r = other.get(url, headers=ADMIN)
        assert r.headers["x-tile-cache"] == "hit" and r.content == first.content
    off = settings.model_copy(update={"tile_cache": False})
    with open_client(off) as baseline:  # the cache turned off: rendered every time
        r = baseline.get(url, headers=ADMIN)
        assert r.headers["x-tile-cache"] == "miss" and r.content == first.content
        assert baseline.get(url, headers=ADMIN).headers["x-tile-cache"] == "miss"
        assert r.headers["etag"] == first.headers["etag"]


def test_frame_covers_the_window_and_is_transparent_where_invalid(served):
    from pyproj import Transformer

    client, _, w, _ = served
    info = client.get(f"/api/v1/tiles/{w['id']}", headers=ADMIN).json()
    s2 = next(x for x in info["layers"] if x["name"] == "s2")
    assert s2["frame"] == f"/api/v1/tiles/{w['id']}/s2/frame/{{t}}.png?v={s2['version']}"
    width, height = s2["frame_size"]
    assert 0.8 * 64 * 64 <= width * height <= 1.25 * 64 * 64  # about the window's pixel count
    to_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    lon0, lat0, lon1, lat1 = info["bounds"]
    x0, y0 = to_3857.transform(lon0, lat0)
    x1, y1 = to_3857.transform(lon1, lat1)
    px = (x1 - x0) / width
    assert np.allclose(s2["frame_bounds_3857"], [x0, y0, x1, y1], atol=2 * px)

    frames = {}
    for t in (0, 1):
        r = client.get(s2["frame"].replace("{t}", str(t)) + "&preset=true_color", headers=ADMIN)
        frames[t] = _img(r)
        assert frames[t].shape == (height, width, 4)
        assert r.headers["cache-control"].endswith("immutable")
    assert s2["valid_fraction"][0] == 0.0 and (frames[0][..., 3] == 0).all()  # no scene: clear
    alpha = (frames[1][..., 3] == 255).mean()
    assert abs(alpha - s2["valid_fraction"][1]) < 0.05 and frames[1][..., :3].std() > 5
    again = client.get(s2["frame"].replace("{t}", "1") + "&preset=true_color", headers=ADMIN)
    assert again.headers["x-tile-cache"] == "hit"
    r = client.get(f"/api/v1/tiles/{w['id']}/s2/frame/2.png", headers=ADMIN)
    assert r.status_code == 404 and "no t=2" in r.json()["detail"]
    # label frames take the project's class colours; nodata (-1) is transparent
    label = next(x for x in info["layers"] if x["name"] == "label")
    img = _img(client.get(label["frame"].replace("{t}", "0"), headers=ADMIN))
    opaque = img[img[..., 3] == 255][:, :3]
    assert {"#" + bytes(int(v) for v in c).hex() for c in np.unique(opaque, axis=0)} <= {
        "#00aa00",
        "#0000ff",
    }


def test_listing_gives_acquisitions_and_valid_fraction_of_the_layer_json(served, settings):
    client, _, w, _ = served
    info = client.get(f"/api/v1/tiles/{w['id']}", headers=ADMIN).json()
    for layer in info["layers"]:
        meta = json.loads(
            _files(Path(settings.data_dir), w, layer["name"]).with_suffix(".json").read_text()
        )
        assert layer["valid_fraction"] == meta["valid_fraction"]
        assert len(layer["acquired"]) == len(meta["periods"])
        for t, dates in enumerate(layer["acquired"]):
            assert set(dates) <= set(meta["acquired"])
            assert bool(dates) == bool(meta["items"][t])
    s2 = next(x for x in info["layers"] if x["name"] == "s2")
    assert s2["acquired"][0] == [] and s2["acquired"][1][0].startswith("2019-09-18")


def test_permissions_are_checked_on_cached_tiles_and_304s(served):
    client, pid, w, (z, x, y) = served
    _, viewer = make_user(client, "vera", project_id=pid, role="viewer")
    _, outsider = make_user(client, "otto")
    layer = _layer(client, w["id"])
    tile = f"/api/v1/tiles/{w['id']}/s2/1/{z}/{x}/{y}.png"
    frame = layer["frame"].replace("{t}", "1")
    for url in (tile, frame):
        ok = client.get(url, headers=viewer)
        assert ok.status_code == 200
        tag = ok.headers["etag"]
        assert client.get(url, headers=viewer).headers["x-tile-cache"] == "hit"
        assert client.get(url, headers={**viewer, "If-None-Match": tag}).status_code == 304
        assert client.get(url, headers=outsider).status_code == 403
        assert client.get(url, headers={**outsider, "If-None-Match": tag}).status_code == 403
        assert client.get(url, headers={"If-None-Match": tag}).status_code == 401
    assert client.get(f"/api/v1/tiles/{w['id']}", headers=outsider).status_code == 403


def test_prediction_tiles_are_cached_with_etags(served, settings):
    """A prediction COG (here: the window's label map, as an inference job's output) is served
    through the cache with an ETag, a 304 and a versioned URL in the listing."""
    from labeling.jobs import Job
    from labeling.models import DatasetRecord

    client, pid, w, (z, x, y) = served
    data_dir = Path(settings.data_dir).resolve()
    cog = data_dir / "jobs" / "fake" / "windows" / w["name"] / "prediction.tif"
    cog.parent.mkdir(parents=True)
    shutil.copy(_files(data_dir, w, "label"), cog)
    with client.app_state.session_factory() as session:
        dataset = session.get(DatasetRecord, w["dataset_id"])
        job = Job(
            kind="inference",
            status="succeeded",
            project_id=pid,
            payload={"dataset": dataset.name},
            result={"windows": [w["name"]], "artifacts": {f"{w['name']}.tif": str(cog)}},
        )
        session.add(job)
        session.commit()
        job_id = job.id
    info = client.get(f"/api/v1/tiles/{w['id']}", headers=ADMIN).json()
    (pred,) = info["predictions"]
    assert pred["tiles"].endswith(f"?v={pred['version']}")
    url = pred["tiles"].format(z=z - 1, x=x // 2, y=y // 2)
    assert f"/predictions/{job_id}/" in url
    first = client.get(url, headers=ADMIN)
    assert first.headers["x-tile-cache"] == "miss" and first.headers["cache-control"].endswith(
        "immutable"
    )
    assert _img(first)[..., 3].max() == 255
    assert client.get(url, headers=ADMIN).headers["x-tile-cache"] == "hit"
    r = client.get(url, headers={**ADMIN, "If-None-Match": first.headers["etag"]})
    assert r.status_code == 304 and r.content == b""


def test_checked_access_is_reused_for_its_ttl_and_no_longer(served, monkeypatch):
    """A key's read access to a window layer is checked once per ``tile_access_ttl_s`` (the
    process's AccessCache): a member removed meanwhile reads tiles until it runs out, then gets
    403; with a ttl of 0 at once."""
    import time

    client, pid, w, (z, x, y) = served
    uid, viewer = make_user(client, "vic", project_id=pid, role="viewer")
    tile = f"/api/v1/tiles/{w['id']}/s2/1/{z}/{x}/{y}.png"
    assert client.get(tile, headers=viewer).status_code == 200
    r = client.delete(f"/api/v1/projects/{pid}/members/{uid}", headers=ADMIN)
    assert r.status_code == 204
    assert client.get(tile, headers=viewer).status_code == 200  # within the ttl (5 s)
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 6.0)
    assert client.get(tile, headers=viewer).status_code == 403
    monkeypatch.undo()

    # ttl 0: every tile is checked in the database
    client.app_state.settings.tile_access_ttl_s = 0
    client.app_state.tile_access = None
    client.put(f"/api/v1/projects/{pid}/members/{uid}", json={"role": "viewer"}, headers=ADMIN)
    assert client.get(tile, headers=viewer).status_code == 200
    client.delete(f"/api/v1/projects/{pid}/members/{uid}", headers=ADMIN)
    assert client.get(tile, headers=viewer).status_code == 403


def test_access_is_checked_again_ahead_of_expiry_in_the_background(served, monkeypatch):
    """Past the entry's re-check time (half to four fifths of the ttl) a request is answered
    from the entry at once and claims a re-check in the background: still granted, the entry
    is renewed; revoked, it is forgotten and the next request is refused, before the ttl."""
    import time

    client, pid, w, (z, x, y) = served
    uid, viewer = make_user(client, "rex", project_id=pid, role="viewer")
    tile = f"/api/v1/tiles/{w['id']}/s2/1/{z}/{x}/{y}.png"
    assert client.get(tile, headers=viewer).status_code == 200
    access = client.app_state.tile_access
    key = (viewer["Authorization"].split()[1], w["id"], "s2")
    expires, due, _ = access._entries[key]
    assert expires - 0.5 * access.ttl - 1e-6 <= due <= expires - 0.2 * access.ttl + 1e-6

    def wait_for(condition) -> None:
        for _ in range(200):
            if condition():
                return
            time.sleep(0.01)
        raise AssertionError("the background re-check did not end")

    monkeypatch.setattr(time, "monotonic", lambda: due + 0.01)
    assert client.get(tile, headers=viewer).status_code == 200
    wait_for(lambda: access._entries[key][0] > expires)  # renewed from a new check
    _, due, _ = access._entries[key]
    r = client.delete(f"/api/v1/projects/{pid}/members/{uid}", headers=ADMIN)
    assert r.status_code == 204
    monkeypatch.setattr(time, "monotonic", lambda: due + 0.01)
    assert client.get(tile, headers=viewer).status_code == 200  # from the entry, still in ttl
    wait_for(lambda: key not in access._entries)  # the re-check found the member gone
    assert client.get(tile, headers=viewer).status_code == 403


def test_the_shortcut_answers_as_the_route_does(served):
    """Every request a map sends, asked with ``api.tile_shortcut`` on and then off: the same
    status, body and caching headers; the shortcut answered the hits and 304s itself, and the
    metrics count them under the tile route."""
    client, pid, w, (z, x, y) = served
    _, viewer = make_user(client, "sam", project_id=pid, role="viewer")
    _, outsider = make_user(client, "oz")
    layer = _layer(client, w["id"])
    tile = f"/api/v1/tiles/{w['id']}/s2/1/{z}/{x}/{y}.png"
    frame = layer["frame"].replace("{t}", "1")
    tag = client.get(tile, headers=viewer).headers["etag"]
    asks = [
        (tile, viewer),
        (f"{tile}?v={layer['version']}", viewer),  # fresh: immutable
        (f"{tile}?v=old&preset=", viewer),
        (f"{tile}?preset=swir", viewer),
        (f"{tile}?preset=swir&preset=gray", viewer),  # given twice: the route takes the last
        (tile, {**viewer, "If-None-Match": tag}),
        (tile, {**viewer, "If-None-Match": f'"other", {tag}'}),
        (tile, {**viewer, "If-None-Match": '"other"'}),
        (frame, viewer),
        (tile, {"Authorization": viewer["Authorization"].replace("Bearer", "bearer")}),
        (tile, outsider),
        (tile, {"If-None-Match": tag}),
        (tile.replace("/s2/1/", "/s2/9/"), viewer),  # no such period
        (tile.replace(f"/{z}/{x}/", f"/{z}/{2**z}/"), viewer),  # no such tile
        (tile.replace("/s2/", "/s3/"), viewer),  # no such layer
        (f"{tile}?preset={'x' * 65}", viewer),  # too long
    ]
    shortcut = client.app_state.tile_shortcut

    def answers():
        out = []
        for url, headers in asks:
            r = client.get(url, headers=headers)
            keep = ("etag", "cache-control", "x-tile-cache", "content-type", "content-length")
            out.append((url, r.status_code, r.content, {k: r.headers.get(k) for k in keep}))
        return out

    answers()  # every PNG rendered once
    before = shortcut.answered
    on = answers()
    answered = shortcut.answered - before
    shortcut.enabled = False
    try:
        off = answers()
    finally:
        shortcut.enabled = True
    assert shortcut.answered - before == answered
    for a, b in zip(on, off, strict=True):
        assert a == b, a[0]
    statuses = [s for _, s, _, _ in on]
    assert statuses[:9] == [200, 200, 200, 200, 200, 304, 304, 200, 200]
    assert statuses[9:] == [200, 403, 401, 404, 422, 404, 422]  # the scheme in any case
    # the shortcut answered the hits and 304s of the viewer's checked access; the route the
    # errors and the preset given twice
    assert answered == 9, answered
    import gc

    assert gc.get_freeze_count() > 0  # start-up's objects are out of the collector's reach
    metrics = client.get("/metrics").text
    route = 'route="/api/v1/tiles/{window_id}/{layer}/{t}/{z}/{x}/{y}.png"'
    assert any(route in line and 'status="304"' in line for line in metrics.splitlines())
