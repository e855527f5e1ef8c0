"""Shared pieces of the browser tests: the components they need, and how a person drives the
UI (sign in, open a window, click the map, draw, select)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import pytest

from api.web import web_dist
from tests.conftest import MISSING

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 20_000


def need_components() -> None:
    """Skip (a ``missing component:`` reason, a failure under CI) without chromium, the built UI
    or playwright."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{MISSING} {CHROMIUM} (run `make chromium`)")
    if not (web_dist() / "index.html").is_file():
        pytest.skip(f"{MISSING} the built web UI at {web_dist()} (run `make web`)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip(f"{MISSING} the playwright Python package")


def tid(name: str) -> str:
    return f"[data-testid='{name}']"


def sign_in(page, platform, key: str) -> None:
    page.goto(platform["base"] + "/")
    page.wait_for_url(re.compile("#/signin$"))
    page.fill(tid("api-key"), key)
    page.click(tid("sign-in"))
    page.wait_for_url(re.compile("#/projects$"))


def switch_user(page, key: str) -> None:
    """Sign out through the UI and sign in again with another key."""
    page.click(tid("sign-out"))
    page.fill(tid("api-key"), key)
    page.click(tid("sign-in"))
    page.wait_for_url(re.compile("#/projects$"))


def open_window(page, platform, window: dict) -> None:
    pid = platform["project"]["id"]
    page.goto(f"{platform['base']}/#/projects/{pid}/windows/{window['id']}")
    page.wait_for_selector(tid("ann-summary"))
    page.wait_for_function("document.querySelector('.map canvas') !== null")


def map_point(page, dx: float, dy: float) -> tuple[float, float]:
    """A page position offset (in px) from the map's centre."""
    box = page.locator(tid("map")).bounding_box()
    return box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy


def map_click(page, dx: float, dy: float) -> None:
    """Click the map like a person: OpenLayers takes two clicks within 250 ms, wherever they
    are, for a double click (which zooms), so leave a pause before each."""
    page.wait_for_timeout(300)
    page.mouse.click(*map_point(page, dx, dy))


def draw_polygon(page, offsets) -> None:
    page.click(tid("tool-polygon"))
    for dx, dy in offsets:
        map_click(page, dx, dy)
    map_click(page, *offsets[0])  # back on the first vertex closes it


def wait_summary(page, start: str) -> None:
    """Wait until the annotation summary starts with ``start``."""
    page.wait_for_function(
        "s => document.querySelector(\"[data-testid='ann-summary']\").innerText.startsWith(s)",
        arg=start,
    )


def select_at(page, dx: float, dy: float) -> None:
    """Click a drawn annotation with the select tool. The last click's single-click event
    (OpenLayers sends it 250 ms late) must land before the tool changes, and this one's after."""
    page.wait_for_timeout(300)
    page.click(tid("tool-select"))
    map_click(page, dx, dy)
    page.wait_for_timeout(350)
    page.wait_for_function(
        "document.querySelector(\"[data-testid='ann-summary']\").innerText.endsWith(' 1 selected')"
    )


def summary(page) -> str:
    return page.locator(tid("ann-summary")).inner_text()


def switch_without_signing_out(page, key: str) -> None:
    """Sign in with another key through "Switch user", never pressing "Sign out"."""
    page.click(tid("switch-user"))
    page.wait_for_url(re.compile("#/signin$"))
    page.fill(tid("api-key"), key)
    page.click(tid("sign-in"))
    page.wait_for_url(re.compile("#/projects$"))


@contextmanager
def seeded_platform(root: Path, shared_data: Path, layers: tuple[str, ...] = ("s2",)):
    """A live server (SQLite in ``root``) with a segmentation project over the real Sen1Floods11
    chip: three windows with data, the chip's rasters uploaded, ``layers`` materialised by the
    worker, and a labeler and a reviewer. Yields {base, project, windows, keys, job, client,
    settings}."""
    import httpx

    from api.jobs.worker import run_worker
    from api.settings import Settings
    from tests.integration.platform.conftest import (
        ADMIN,
        ADMIN_KEY,
        live_server,
        make_project,
        make_user,
    )
    from tests.integration.platform.test_job_flow import UPLOADS, upload_chip, windows_with_data

    need_components()
    data_dir = root / "data"
    data_dir.mkdir()
    db_url = f"sqlite:///{root / 'earthplat.db'}"
    with live_server(db_url, data_dir) as base:
        client = httpx.Client(base_url=base, timeout=120)
        project = make_project(client, name="floods-ui")
        pid = project["id"]
        _, chosen = windows_with_data(client, pid, shared_data, 3)
        upload_chip(client, pid, shared_data)
        specs = [{"source": n, "layer": n, "period": "15d", **UPLOADS[n][2]} for n in layers]
        payload = {"layers": specs, "windows": [w["id"] for w in chosen]}
        r = client.post(
            f"/api/v1/projects/{pid}/jobs",
            json={"kind": "materialize", "payload": payload},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        settings = Settings(data_dir=data_dir, database_url=db_url, admin_key=ADMIN_KEY)
        run_worker(settings, once=True, install_signals=False)
        job = client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN).json()
        assert job["status"] == "succeeded", job
        keys = {}
        for role in ("labeler", "reviewer"):
            _, headers = make_user(client, f"ui-{role}", project_id=pid, role=role)
            keys[role] = headers["Authorization"].split()[1]
        try:
            yield {
                "base": base,
                "project": project,
                "windows": chosen,
                "keys": keys,
                "job": job,
                "client": client,
                "settings": settings,
            }
        finally:
            client.close()


def api(platform, role: str = "labeler"):
    """An HTTP client of the platform's API as ``role`` (``admin``, ``labeler``, ``reviewer``)."""
    import httpx

    from tests.integration.platform.conftest import ADMIN_KEY

    key = ADMIN_KEY if role == "admin" else platform["keys"][role]
    return httpx.Client(
        base_url=f"{platform['base']}/api/v1",
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
