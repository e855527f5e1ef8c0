"""The labelling UI in headless Chromium (Playwright) against a real server.

One uvicorn on loopback (SQLite in a tmp dir) with a project over the real Sen1Floods11 chip:
windows, the uploaded S2 and label rasters, and a materialize job run by the worker, all made
through the HTTP API with the platform tests' helpers. The tests then drive the built UI
(``make web``) like a user and check the outcome through the API.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.browser.helpers import (
    api,
    draw_polygon,
    map_click,
    open_window,
    seeded_platform,
    select_at,
    sign_in,
    summary,
    switch_user,
    tid,
    wait_summary,
)
from tests.integration.platform.conftest import (
    make_user,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def platform(tmp_path_factory, shared_data: Path):
    """The seeded server: {base, project, windows (materialised), keys, job, client}."""
    with seeded_platform(tmp_path_factory.mktemp("browser"), shared_data) as p:
        yield p


def annotate_centre(client: httpx.Client, window: dict, class_value: int) -> None:
    """A point annotation at the window's centre, through the API."""
    from shapely.geometry import mapping, shape

    point = mapping(shape(window["geometry"]).centroid)
    r = client.post(
        f"/windows/{window['id']}/annotations",
        json={"geometry": point, "class_value": class_value},
    )
    assert r.status_code == 201, r.text


def test_sign_in_open_window_and_browse_imagery(page, platform):
    pid = platform["project"]["id"]
    page.goto(platform["base"] + "/")
    page.fill(tid("api-key"), "ep_not_a_real_key_000000000000")
    page.click(tid("sign-in"))
    page.wait_for_selector(tid("error-detail"))
    assert "not valid" in page.inner_text(tid("error-detail"))
    assert page.inner_text(tid("error-fix")).startswith("Fix:")

    sign_in(page, platform, platform["keys"]["labeler"])
    assert page.inner_text(tid("user-name")) == "ui-labeler"
    assert "null" not in page.inner_text("#who")
    page.click(tid(f"project-{pid}"))
    page.wait_for_selector(tid("windows"))
    window = platform["windows"][0]
    row = page.locator(tid(f"window-row-{window['id']}"))
    assert row.locator(tid("status")).inner_text() == "unlabeled"

    tiles: list[tuple[str, int, str]] = []
    page.on(
        "response",
        lambda r: (
            tiles.append((r.url, r.status, r.headers.get("content-type", "")))
            if "/api/v1/tiles/" in r.url and r.url.split("?")[0].endswith(".png")
            else None
        ),
    )
    prefix = f"/api/v1/tiles/{window['id']}/s2/"

    def of_step(url: str, t: int) -> bool:
        """A request for step t: one image of a small window, or its XYZ tiles."""
        return re.search(rf"{re.escape(prefix)}(frame/{t}\.png|{t}/)", url) is not None

    with page.expect_response(lambda r: of_step(r.url, 1)):  # t=1 holds the S2 date
        page.click(tid(f"window-{window['id']}"))
    page.wait_for_timeout(500)
    first = [t for t in tiles if of_step(t[0], 1)]
    assert first and all(s == 200 and c == "image/png" for _, s, c in first), first
    label = page.inner_text(tid("time-label"))
    assert label.startswith("t=1: 2019-09-16") and "no data" not in label

    # the time slider: t=0 (an empty period) is requested with the new t
    with page.expect_response(lambda r: of_step(r.url, 0)) as resp:
        page.locator(tid("time-slider")).press("ArrowLeft")
    assert resp.value.status == 200
    assert "no data" in page.inner_text(tid("time-label"))
    page.locator(tid("time-slider")).press("ArrowRight")

    # the preset picker offers the API's presets; a new one is asked for in the tile URLs
    info = api(platform).get(f"/tiles/{window['id']}").json()
    presets = next(layer["presets"] for layer in info["layers"] if layer["name"] == "s2")
    options = page.locator(f"{tid('preset-select')} option").all_inner_texts()
    assert options == presets and len(presets) >= 2
    with page.expect_response(lambda r: f"preset={presets[1]}" in r.url) as resp:
        page.select_option(tid("preset-select"), presets[1])
    assert resp.value.status == 200 and of_step(resp.value.url, 1)
    assert resp.value.headers["content-type"] == "image/png"

    page.click(tid("sign-out"))
    page.wait_for_url(re.compile("#/signin$"))
    assert page.evaluate("localStorage.getItem('earthplat.key')") is None


def test_draw_save_edit_and_delete_a_polygon(page, platform):
    from shapely.geometry import box, shape

    window = platform["windows"][1]
    client = api(platform)
    sign_in(page, platform, platform["keys"]["labeler"])
    open_window(page, platform, window)
    page.check(tid("class-1"))  # water
    draw_polygon(page, [(-60, -50), (60, -50), (70, 40), (-50, 50)])
    assert summary(page).startswith("1 annotation(s), 1 unsaved")
    page.click(tid("save"))
    wait_summary(page, "1 annotation(s), 0 unsaved")

    (ann,) = client.get(f"/windows/{window['id']}/annotations").json()
    assert ann["class_value"] == 1 and ann["version"] == 1
    geom = shape(ann["geometry"])
    assert ann["geometry"]["type"] == "Polygon" and geom.is_valid and geom.area > 0
    lons, lats = zip(*ann["geometry"]["coordinates"][0], strict=True)
    assert all(-180 <= x <= 180 for x in lons) and all(-90 <= y <= 90 for y in lats)
    bounds = client.get(f"/tiles/{window['id']}").json()["bounds"]
    assert box(*bounds).buffer(1e-9).contains(geom), (geom.bounds, bounds)
    assert client.get(f"/windows/{window['id']}").json()["status"] == "in_progress"

    # edit: select it, change its class, save -> version 2
    select_at(page, 0, 0)
    page.check(tid("class-0"))
    assert "1 unsaved" in summary(page)
    page.click(tid("save"))
    wait_summary(page, "1 annotation(s), 0 unsaved")
    (ann,) = client.get(f"/windows/{window['id']}/annotations").json()
    assert ann["class_value"] == 0 and ann["version"] == 2

    # a point, then delete the polygon
    page.click(tid("tool-point"))
    page.check(tid("class-1"))
    map_click(page, 90, 90)
    page.click(tid("save"))
    wait_summary(page, "2 annotation(s), 0 unsaved")
    select_at(page, 0, 0)
    page.click(tid("delete-selected"))  # removed here; the server keeps it until saved
    wait_summary(page, "1 annotation(s), 1 unsaved, 0 selected")
    assert len(client.get(f"/windows/{window['id']}/annotations").json()) == 2
    page.click(tid("save"))
    wait_summary(page, "1 annotation(s), 0 unsaved, 0 selected")
    (left,) = client.get(f"/windows/{window['id']}/annotations").json()
    assert left["geometry"]["type"] == "Point" and left["class_value"] == 1
    assert box(*bounds).contains(shape(left["geometry"]))


def test_stale_save_shows_the_conflict_and_overwrites_nothing(page, platform):
    from shapely.geometry import shape

    window = platform["windows"][2]
    client = api(platform)
    c = shape(window["geometry"]).centroid
    d = 0.0008  # ~80 m: inside the 640 m window
    ring = [[c.x - d, c.y - d], [c.x + d, c.y - d], [c.x + d, c.y + d], [c.x - d, c.y + d]]
    polygon = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    r = client.post(
        f"/windows/{window['id']}/annotations", json={"geometry": polygon, "class_value": 1}
    )
    assert r.status_code == 201, r.text
    ann_id = r.json()["id"]

    sign_in(page, platform, platform["keys"]["labeler"])
    open_window(page, platform, window)
    assert summary(page).startswith("1 annotation(s)")
    select_at(page, 0, 0)
    page.check(tid("class-0"))  # the UI's change (from version 1) ...

    # ... while version 2 is saved from another tab of the same labeller (nobody else may
    # write to a window the labeller holds: that is a 423, tested in test_rules.py)
    theirs = api(platform).patch(
        f"/annotations/{ann_id}",
        json={"properties": {"note": "theirs"}},
        headers={"If-Match": '"1"'},
    )
    assert theirs.status_code == 200 and theirs.json()["version"] == 2

    page.click(tid("save"))
    page.wait_for_selector(tid("error-detail"))
    assert "changed by someone else" in page.inner_text(tid("error-detail"))
    assert "Reload" in page.inner_text(tid("error-fix"))
    now = client.get(f"/annotations/{ann_id}").json()
    assert now["version"] == 2 and now["class_value"] == 1
    assert now["properties"] == {"note": "theirs"}

    page.click(tid("conflict-reload"))
    wait_summary(page, "1 annotation(s), 0 unsaved")
    assert page.locator(tid("error")).is_hidden()


def test_submit_then_review_in_the_browser(page, platform):
    window = platform["windows"][0]
    pid = platform["project"]["id"]
    labeler = api(platform)
    annotate_centre(labeler, window, class_value=1)

    sign_in(page, platform, platform["keys"]["labeler"])
    open_window(page, platform, window)
    page.click(tid("submit"))
    page.wait_for_selector(f"{tid('status')}:text('submitted')")
    assert page.locator(tid("locked")).is_visible()
    assert labeler.get(f"/windows/{window['id']}").json()["status"] == "submitted"
    page.goto(f"{platform['base']}/#/projects/{pid}")
    page.wait_for_selector(tid("windows"))
    assert page.locator(tid("review-link")).count() == 0  # labelers do not review

    switch_user(page, platform["keys"]["reviewer"])
    page.click(tid(f"project-{pid}"))
    page.click(tid("review-link"))
    page.click(tid(f"review-{window['id']}"))
    page.wait_for_selector(tid("accept"))
    assert page.inner_text(tid("ann-summary")) == "1 annotation(s)"
    page.fill(tid("review-comment"), "clean water outline")
    page.click(tid("accept"))
    page.wait_for_selector(tid("review-empty"))

    reviewer = api(platform, "reviewer")
    assert reviewer.get(f"/windows/{window['id']}").json()["status"] == "accepted"
    (review,) = reviewer.get(f"/windows/{window['id']}/reviews").json()
    assert review["decision"] == "accept" and review["comment"] == "clean water outline"


def test_jobs_page_lists_the_materialize_job_and_its_logs(page, platform):
    pid = platform["project"]["id"]
    job = platform["job"]
    sign_in(page, platform, platform["keys"]["reviewer"])
    page.goto(f"{platform['base']}/#/projects/{pid}")
    page.click(tid("jobs-link"))
    row = page.locator(tid(f"job-{job['id']}"))
    row.wait_for()
    assert row.locator(tid("job-kind")).inner_text() == "materialize"
    assert row.locator(tid("status")).inner_text() == "succeeded"
    assert "100%" in row.inner_text()
    started = time.monotonic()
    row.locator(tid(f"logs-{job['id']}")).click()
    page.wait_for_function(
        "document.querySelector(\"[data-testid='job-logs']\").innerText.includes('materialised')"
    )
    assert time.monotonic() - started < 10
    assert "s2: 3 materialised" in page.inner_text(tid("job-logs"))


def test_next_task_claims_a_window_and_opens_it(page, platform):
    pid = platform["project"]["id"]
    labeler = api(platform)
    me = labeler.get("/users/me").json()
    sign_in(page, platform, platform["keys"]["labeler"])
    page.click(tid(f"project-{pid}"))
    page.click(tid("next-task"))
    page.wait_for_url(re.compile(rf"#/projects/{pid}/windows/\d+$"))
    window_id = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector(tid("ann-summary"))
    window = labeler.get(f"/windows/{window_id}").json()
    assert window["status"] == "in_progress" and window["locked_by"] == me["id"]
    assert page.inner_text(tid("window-name")) == window["name"]


def test_reject_shows_the_reason_and_the_labeler_fixes_and_resubmits(page, platform):
    window = platform["windows"][2]
    pid = platform["project"]["id"]
    labeler = api(platform)
    annotate_centre(labeler, window, class_value=0)
    assert labeler.post(f"/windows/{window['id']}/submit").json()["status"] == "submitted"
    n_before = len(labeler.get(f"/windows/{window['id']}/annotations").json())

    sign_in(page, platform, platform["keys"]["reviewer"])
    page.goto(f"{platform['base']}/#/projects/{pid}/review/{window['id']}")
    page.wait_for_selector(tid("reject"))
    page.fill(tid("review-comment"), "the river is water, not land")
    page.click(tid("reject"))
    page.wait_for_url(re.compile(f"#/projects/{pid}/review$"))
    assert labeler.get(f"/windows/{window['id']}").json()["status"] == "rejected"

    switch_user(page, platform["keys"]["labeler"])
    open_window(page, platform, window)
    assert "the river is water, not land" in page.inner_text(tid("rejection"))
    assert page.locator(tid("save")).is_visible()  # a rejected window is editable again
    # the fix: outline the water; saving moves the window back to in_progress
    page.check(tid("class-1"))
    draw_polygon(page, [(-40, -40), (40, -40), (40, 40), (-40, 40)])
    page.click(tid("save"))
    wait_summary(page, f"{n_before + 1} annotation(s), 0 unsaved")
    assert labeler.get(f"/windows/{window['id']}").json()["status"] == "in_progress"
    page.click(tid("submit"))
    page.wait_for_selector(f"{tid('status')}:text('submitted')")
    assert not page.locator(tid("rejection")).is_visible()
    assert labeler.get(f"/windows/{window['id']}").json()["status"] == "submitted"
    decisions = [x["decision"] for x in labeler.get(f"/windows/{window['id']}/reviews").json()]
    assert decisions == ["reject"]


def test_a_viewer_sees_imagery_and_labels_but_cannot_edit(page, platform):
    window = platform["windows"][1]
    pid = platform["project"]["id"]
    _, headers = make_user(platform["client"], "ui-viewer", project_id=pid, role="viewer")
    viewer_key = headers["Authorization"].split()[1]
    before = api(platform, "admin").get(f"/windows/{window['id']}/annotations").json()

    sign_in(page, platform, viewer_key)
    page.goto(f"{platform['base']}/#/projects/{pid}")
    page.wait_for_selector(tid("windows"))
    assert page.locator(tid("review-link")).count() == 0
    open_window(page, platform, window)
    assert page.locator(tid("locked")).is_visible()
    for control in ("save", "submit", "tool-polygon", "delete-selected"):
        assert not page.locator(tid(control)).is_visible(), control
    summary_text = summary(page)
    assert summary_text.startswith(f"{len(before)} annotation(s)"), summary_text
    after = api(platform, "admin").get(f"/windows/{window['id']}/annotations").json()
    assert after == before
