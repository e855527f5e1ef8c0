"""Moving in time over XYZ tiles (what a window larger than one frame gets): once a step is on
screen, the neighbouring steps' tiles in view are fetched ahead, so the next step shows tiles
already in the browser. Real data: the Slovenia Sentinel-2 series (five dates), uploaded and
materialised by the platform's own jobs (as ``bench/ui_slider.py`` does)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.browser.helpers import tid

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def series(tmp_path_factory, shared_data: Path):
    from api.settings import Settings
    from bench.ui_slider import SERIES, materialize, seed
    from tests.integration.platform.conftest import ADMIN, ADMIN_KEY, live_server

    if not SERIES.is_file():
        pytest.skip(f"needs {SERIES}")
    root = tmp_path_factory.mktemp("slider")
    data_dir = root / "data"
    data_dir.mkdir()
    db_url = f"sqlite:///{root / 'earthplat.db'}"
    with live_server(db_url, data_dir) as base, httpx.Client(base_url=base, timeout=300) as c:
        pid, window = seed(c, ADMIN)
        settings = Settings(data_dir=data_dir, database_url=db_url, admin_key=ADMIN_KEY)
        materialize(c, ADMIN, settings, pid, window)
        info = c.get(f"/api/v1/tiles/{window['id']}", headers=ADMIN).json()
        yield {"base": base, "project": pid, "window": window, "info": info, "key": ADMIN_KEY}


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _at_step(urls, t: int) -> set[str]:
    return {re.sub(r"/s2/\d+/", f"/s2/{t}/", _path(u)) for u in urls}


def _ready_at(page, t: int) -> None:
    page.wait_for_function(
        "t => document.querySelector('.map').dataset.imagery === 'ready' && "
        "document.querySelector('.map').dataset.imageryStep.split('/')[1] === String(t)",
        arg=t,
    )


def _move(page, t: int) -> None:
    """The slider to ``t`` (as dragging it does), until the step is on screen."""
    page.eval_on_selector(
        tid("time-slider"),
        "(el, t) => { el.value = String(t); el.dispatchEvent(new Event('input')); }",
        t,
    )
    _ready_at(page, t)


def test_the_neighbouring_steps_tiles_are_fetched_ahead_and_then_shown(page, series):
    layer = next(x for x in series["info"]["layers"] if x["name"] == "s2")
    present = [t for t in range(len(layer["periods"])) if t not in layer["missing_periods"]]
    assert len(present) >= 3, layer
    network: list[str] = []
    page.on("request", lambda r: "/api/v1/tiles/" in r.url and network.append(_path(r.url)))
    page.goto(series["base"] + "/")
    page.evaluate(
        "k => { localStorage.setItem('earthplat.key', k); "
        "localStorage.setItem('earthplat.imagery', 'tiles'); }",
        series["key"],
    )
    page.goto(f"{series['base']}/#/projects/{series['project']}/windows/{series['window']['id']}")
    start = present[0]
    _ready_at(page, int(page.input_value(tid("time-slider"))))
    if int(page.input_value(tid("time-slider"))) != start:
        _move(page, start)
    shown = page.evaluate("earthplat.imagery().requested")
    assert shown and all(f"/s2/{start}/" in u for u in shown), "XYZ tiles of the start step"
    after = present[1]  # the next step with data (steps without data between are skipped)
    ahead = _at_step(shown, after)
    page.wait_for_function(
        "want => want.every((u) => performance.getEntriesByType('resource')"
        ".some((e) => e.name.endsWith(u)))",
        arg=sorted(ahead),
    )
    assert ahead <= set(network), "the next step's tiles in view were fetched ahead"
    assert not any(f"/s2/{t}/" in u for u in network for t in present[2:]), "only neighbours"

    fetched = len(network)
    _move(page, after)
    now = {_path(u) for u in page.evaluate("earthplat.imagery().requested")}
    assert now and now <= ahead, "the step shows the tiles fetched ahead"
    assert not now & set(network[fetched:]), "and does not fetch them again"
