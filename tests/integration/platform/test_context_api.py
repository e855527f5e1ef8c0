"""Context overviews and the basemap setting through the API, after a real materialize job over
the Sen1Floods11 chip: the listing, tiles that are opaque over the chip and transparent around
it, ETag/304, who may read, route order against the tile route, and ``/ui-config``; on SQLite
and PostgreSQL."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from labeling.tiles import tile_for_lonlat
from tests.integration.platform.conftest import (
    ADMIN,
    ADMIN_KEY,
    chip_bbox,
    make_project,
    make_user,
)
from tests.integration.platform.test_job_flow import (
    materialize,
    open_client,
    upload_chip,
    windows_with_data,
)


@pytest.fixture
def served(settings, shared_data):
    """A client over a project whose first window over the chip is materialised (s2 + label)."""
    with open_client(settings) as client:
        pid = make_project(client)["id"]
        _, chosen = windows_with_data(client, pid, shared_data, 1)
        upload_chip(client, pid, shared_data)
        job = materialize(client, pid, [chosen[0]["id"]])
        assert job["status"] == "succeeded", job
        yield client, pid, chosen[0], chip_bbox(shared_data)


def _img(r) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(r.content)))


def _pixel_lonlat(z: int, x: int, y: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """[size, size] longitude and latitude of the centre of each pixel of tile z/x/y."""
    import morecantile
    from rasterio.warp import transform

    left, _, right, top = morecantile.tms.get("WebMercatorQuad").xy_bounds(x, y, z)
    step = (right - left) / size
    cols, rows = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    xs, ys = left + cols * step, top - rows * step
    lon, lat = transform("EPSG:3857", "EPSG:4326", xs.ravel(), ys.ravel())
    return np.reshape(lon, xs.shape), np.reshape(lat, ys.shape)


def _inside(lon, lat, box, pad: float = 0.0) -> np.ndarray:
    return (lon > box[0] + pad) & (lon < box[2] - pad) & (lat > box[1] + pad) & (lat < box[3] - pad)


def test_listing_and_tiles_show_the_chip_around_the_window(served):
    client, _, w, chip = served
    r = client.get(f"/api/v1/windows/{w['id']}/context", headers=ADMIN)
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["window_id"] == w["id"]
    assert [x["layer"] for x in listing["layers"]] == ["s2"]  # the label layer has none
    ctx = listing["layers"][0]
    # the window spans September in 15-day periods; the scene (18 Sep) fills the second
    tiles = client.get(f"/api/v1/tiles/{w['id']}", headers=ADMIN).json()
    assert [x["name"] for x in tiles["layers"]] == ["label", "s2"]  # no ".context" layer
    s2 = next(x for x in tiles["layers"] if x["name"] == "s2")
    assert ctx["period_index"] == 1 and ctx["period"] == s2["periods"][1]
    assert ctx["presets"][0] == "true_color" and ctx["bands"] == s2["bands"]
    assert ctx["resolution"] == pytest.approx(40.0) and 0 < ctx["valid_fraction"] < 1
    lon0, lat0, lon1, lat1 = ctx["bounds"]
    b = tiles["bounds"]
    assert lon0 < b[0] < b[2] < lon1 and lat0 < b[1] < b[3] < lat1
    assert (lon1 - lon0) == pytest.approx(5 * (b[2] - b[0]), rel=0.05)
    assert ctx["tiles"].endswith(f"?v={ctx['version']}")

    # one tile holding the whole overview: opaque over the chip, transparent beside it
    z, x, y = tile_for_lonlat((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, 12)
    img = _img(client.get(ctx["tiles"].format(z=z, x=x, y=y), headers=ADMIN))
    alpha = img[..., 3]
    lon, lat = _pixel_lonlat(z, x, y)
    pad = 0.0015  # about 150 m: two overview pixels plus the UTM box's tilt in lon/lat
    both = _inside(lon, lat, chip, pad) & _inside(lon, lat, ctx["bounds"], pad)
    beside = ~_inside(lon, lat, chip, -pad / 3) & _inside(lon, lat, ctx["bounds"], pad)
    assert both.sum() > 1000 and beside.sum() > 100  # the overview reaches past the chip
    assert (alpha[both] == 255).mean() > 0.99
    assert img[both][:, :3].std() > 5  # real imagery, not a flat fill
    assert (alpha[beside] == 0).all()  # inside the overview, no scene there: transparent
    assert (alpha[~_inside(lon, lat, ctx["bounds"], -pad)] == 0).all()
    # presets apply
    swir = _img(client.get(ctx["tiles"].format(z=z, x=x, y=y) + "&preset=swir", headers=ADMIN))
    assert swir.tobytes() != img.tobytes()


def test_route_order_etag_and_who_may_read(served):
    client, pid, w, _ = served
    zxy = tile_for_lonlat(*_centre(client, w), 14)
    url = "/api/v1/tiles/{}/{}/context/{}/{}/{}.png".format(w["id"], "s2", *zxy)
    # the tile route (/tiles/{w}/{layer}/{t}/...) does not take "context" for a period
    first = client.get(url, headers=ADMIN)
    assert _img(first)[..., 3].max() == 255
    assert first.headers["cache-control"] and first.headers["etag"]
    assert _img(client.get(url.replace("/context/", "/1/"), headers=ADMIN))[..., 3].max() == 255
    again = client.get(url, headers=ADMIN | {"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    other = client.get(url, headers=ADMIN | {"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == first.content
    # read permission, as for any tile
    _, viewer = make_user(client, "vera", project_id=pid, role="viewer")
    _, outsider = make_user(client, "otto")
    listing = f"/api/v1/windows/{w['id']}/context"
    assert client.get(listing, headers=viewer).status_code == 200
    assert _img(client.get(url, headers=viewer)).shape == (256, 256, 4)
    for path in (url, listing):
        assert client.get(path, headers=outsider).status_code == 403
        assert client.get(path).status_code == 401
    # clear 404s: a label layer has no overview, an unknown window none at all
    r = client.get(url.replace("/s2/", "/label/"), headers=ADMIN)
    assert r.status_code == 404 and "no context overview of layer 'label'" in r.json()["detail"]
    assert "for s2" in r.json()["detail"]
    r = client.get(url.replace(f"/tiles/{w['id']}/", "/tiles/999999/"), headers=ADMIN)
    assert r.status_code == 404 and "no window 999999" in r.json()["detail"]


def _centre(client, w) -> tuple[float, float]:
    b = client.get(f"/api/v1/tiles/{w['id']}", headers=ADMIN).json()["bounds"]
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def test_ui_config_with_and_without_a_basemap(settings):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from api.settings import Settings

    url = "https://tile.example.org/{z}/{x}/{y}.png"
    with_map = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        admin_key=ADMIN_KEY,
        basemap_url=url,
        basemap_attribution="(c) Example contributors",
    )
    for s, expected in (
        (settings, {"basemap": None}),
        (with_map, {"basemap": {"url": url, "attribution": "(c) Example contributors"}}),
    ):
        app = create_app(s)
        try:
            with TestClient(app) as client:
                r = client.get("/api/v1/ui-config")  # public: no key
                assert r.status_code == 200 and r.json() == expected
        finally:
            app.state.engine.dispose()


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://tile.example.org/{z}/{x}.png", "lacks {y}"),
        ("https://tile.example.org/tiles.png", "lacks {z}, {x}, {y}"),
        ("ftp://tile.example.org/{z}/{x}/{y}.png", "is not an http(s)"),
    ],
)
def test_a_bad_basemap_url_stops_the_server_at_start_up(url, named, tmp_path, monkeypatch):
    from pydantic import ValidationError

    from api.main import create_app

    monkeypatch.setenv("EARTHPLAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EARTHPLAT_BASEMAP_URL", url)
    with pytest.raises(ValidationError) as err:
        create_app()  # what uvicorn --factory api.main:create_app runs
    message = str(err.value)
    assert "EARTHPLAT_BASEMAP_URL" in message and named in message
    assert "{z}/{x}/{y}" in message  # the fix: what a template looks like
    assert not (tmp_path / "earthplat.db").exists()  # refused before anything was made
