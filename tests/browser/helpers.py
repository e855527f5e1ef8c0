"""Shared pieces of the browser tests: the components they need, and how a person drives the
UI (sign in, open a window, click the map, draw, select)."""

from __future__ import annotations

import re
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
