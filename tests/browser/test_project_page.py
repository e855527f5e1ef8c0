"""The project page at scale, and who is signed in, in headless chromium against a real server.

A project of 1,253 windows (a grid over an AOI, made through the API; no imagery needed): the
page counts all of them, pages through them 100 at a time, filters by status, assignee, class
and valid fraction, and draws every window on the overview map coloured by status. Signing in
with another key without signing out replaces the user, their role and the controls they see.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.browser.helpers import need_components, sign_in, switch_without_signing_out, tid
from tests.integration.platform.conftest import ADMIN, live_server, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]
N = 1253
PAGE_INFO = "document.querySelector(\"[data-testid='page-info']\").innerText"


def wait_total(page, n: int) -> None:
    page.wait_for_function(f"n => {PAGE_INFO}.endsWith(`of ${{n}} windows`)", arg=n)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    need_components()
    root = tmp_path_factory.mktemp("big")
    data_dir = root / "data"
    data_dir.mkdir()
    db_url = f"sqlite:///{root / 'earthplat.db'}"
    with live_server(db_url, data_dir) as base:
        client = httpx.Client(base_url=base, timeout=120)
        pid = make_project(client, name="big")["id"]
        # a grid of 64 px windows at 10 m over the AOI (about 1,400), trimmed to N
        r = client.post(
            f"/api/v1/projects/{pid}/windows/aoi",
            json={
                "bbox": [-0.80, 38.00, -0.72, 38.72],
                "start": "2019-09-01",
                "end": "2019-10-01",
                "size": 64,
            },
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        overview = client.get(f"/api/v1/projects/{pid}/windows/overview", headers=ADMIN).json()
        ids = sorted(f["properties"]["id"] for f in overview["features"])
        assert len(ids) >= N, len(ids)
        keys, users = {}, {}
        for role in ("labeler", "reviewer", "viewer"):
            users[role], h = make_user(client, f"big-{role}", project_id=pid, role=role)
            keys[role] = h["Authorization"].split()[1]
        engine = create_engine(db_url)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM windows WHERE id > :last"), {"last": ids[N - 1]})
            # statuses and valid fractions a real project would have
            conn.execute(text("UPDATE windows SET status='accepted' WHERE id % 10 = 0"))
            conn.execute(text("UPDATE windows SET status='submitted' WHERE id % 10 = 1"))
            conn.execute(text("UPDATE windows SET valid_fraction = (id % 5) / 4.0"))
        engine.dispose()
        client.post(
            f"/api/v1/projects/{pid}/assignments",
            json={"user_id": users["labeler"], "window_ids": ids[:7]},
            headers=ADMIN,
        ).raise_for_status()
        yield {"base": base, "pid": pid, "ids": ids[:N], "keys": keys, "client": client}
        client.close()


def test_a_big_project_pages_filters_and_maps_every_window(page, big):
    base, pid, ids = big["base"], big["pid"], big["ids"]
    sign_in(page, {"base": base}, big["keys"]["reviewer"])
    page.goto(f"{base}/#/projects/{pid}")
    page.wait_for_selector(tid("windows"))
    assert page.inner_text(tid("window-counts")).startswith(f"{N} windows")
    # the first page fills in once its request answers
    page.wait_for_function(f"{PAGE_INFO} === 'Showing 1-100 of {N} windows'")
    seen = set()
    for _ in range(N // 100 + 1):
        rows = page.locator("tr[data-testid^='window-row-']").evaluate_all(
            "rs => rs.map(r => +r.dataset.testid.split('-').pop())"
        )
        seen.update(rows)
        if page.locator(tid("page-next")).is_disabled():
            break
        page.click(tid("page-next"))
        page.wait_for_function(
            "n => !document.querySelector(\"[data-testid='page-info']\").innerText"
            ".startsWith('Showing 1-')",
        )
        page.wait_for_function(
            "first => +document.querySelector(\"tr[data-testid^='window-row-']\")"
            ".dataset.testid.split('-').pop() !== first",
            arg=rows[0],
        )
    assert seen == set(ids)
    assert page.inner_text(tid("page-info")).endswith(f"of {N} windows")

    # the overview map holds every window, coloured by status
    n_features = page.evaluate("window.earthplatOverview.windows.getFeatures().length")
    assert n_features == N

    # filters: status, assignee, valid fraction
    page.select_option(tid("filter-status"), "accepted")
    accepted = sum(1 for i in ids if i % 10 == 0)
    wait_total(page, accepted)
    statuses = page.locator(
        "tr[data-testid^='window-row-'] [data-testid='status']"
    ).all_inner_texts()
    assert set(statuses) == {"accepted"}
    page.wait_for_function(
        "n => window.earthplatOverview.windows.getFeatures().length === n", arg=accepted
    )
    page.select_option(tid("filter-status"), "")
    page.select_option(tid("filter-assignee"), label="user 2 (labeler)")
    page.wait_for_function(f"{PAGE_INFO} === 'Showing 1-7 of 7 windows'")
    page.select_option(tid("filter-assignee"), "")
    page.fill(tid("filter-min-valid"), "100")
    page.press(tid("filter-min-valid"), "Tab")
    full = sum(1 for i in ids if i % 5 == 4)
    wait_total(page, full)


def test_signing_in_with_another_key_replaces_the_user_everywhere(page, big):
    base, pid = big["base"], big["pid"]
    sign_in(page, {"base": base}, big["keys"]["labeler"])
    page.goto(f"{base}/#/projects/{pid}")
    page.wait_for_selector(tid("windows"))
    assert page.inner_text(tid("user-name")) == "big-labeler"
    assert page.inner_text(tid("my-role")) == "labeler"
    assert page.locator(tid("next-task")).count() == 1
    assert page.locator(tid("review-link")).count() == 0
    assert page.locator(tid("run-panel")).count() == 0

    switch_without_signing_out(page, big["keys"]["reviewer"])
    assert page.inner_text(tid("user-name")) == "big-reviewer"
    page.goto(f"{base}/#/projects/{pid}")
    page.wait_for_selector(tid("windows"))
    assert page.inner_text(tid("my-role")) == "reviewer"
    assert page.locator(tid("review-link")).count() == 1
    assert page.locator(tid("likely-link")).count() == 1
    assert page.locator(tid("run-panel")).count() == 0

    switch_without_signing_out(page, big["keys"]["viewer"])
    assert page.inner_text(tid("user-name")) == "big-viewer"
    page.goto(f"{base}/#/projects/{pid}")
    page.wait_for_selector(tid("windows"))
    assert page.inner_text(tid("my-role")) == "viewer"
    for control in ("next-task", "review-link", "likely-link", "run-panel", "settings-save"):
        assert page.locator(tid(control)).count() == 0, control


def test_a_screen_that_loads_late_never_draws_over_the_next_one(page, big):
    """The user leaves the project list before it has loaded: when its answer comes it must not
    replace the project page they moved to (the race CI hit under load)."""
    base, pid = big["base"], big["pid"]
    sign_in(page, {"base": base}, big["keys"]["reviewer"])
    page.goto(f"{base}/#/projects/{pid}")
    page.wait_for_selector(tid("windows"))
    held = []
    page.route("**/api/v1/projects", lambda route: held.append(route))
    with page.expect_request("**/api/v1/projects"):
        page.evaluate("location.hash = '#/projects'")
    page.evaluate(f"location.hash = '#/projects/{pid}'")
    page.wait_for_selector(tid("windows"))
    assert len(held) == 1
    with page.expect_response("**/api/v1/projects"):
        held[0].continue_()
    page.evaluate("new Promise(r => setTimeout(r, 200))")  # let the late screen try to draw
    assert page.locator(tid("windows")).is_visible()
    assert page.locator(tid("projects")).count() == 0
    assert page.inner_text(tid("project-name")) == "big"
