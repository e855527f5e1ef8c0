"""The labelling tools in headless Chromium against a real server: painting class masks on the
window's pixel grid (brush, eraser, fill) with undo/redo across save, the keyboard shortcuts,
holes in polygons, and imagery a labeller can trust (the window opens on imagery, and moving in
time never shows another step's pixels).

The server is seeded like ``test_labeling_ui`` (the real Sen1Floods11 chip), with the chip's
hand label materialised as a layer too, so a window has a label layer to not open on.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.browser.helpers import (
    api,
    map_click,
    map_point,
    open_window,
    seeded_platform,
    select_at,
    sign_in,
    summary,
    tid,
    wait_summary,
)
from tests.integration.platform.conftest import ADMIN

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def platform(tmp_path_factory, shared_data: Path):
    root = tmp_path_factory.mktemp("tools")
    with seeded_platform(root, shared_data, layers=("s2", "label")) as p:
        yield p


def labels(page) -> np.ndarray:
    """The painted labels on the page, [rows, cols] (-1: none)."""
    grid = page.evaluate("earthplat.grid")
    flat = page.evaluate("earthplat.labels()")
    return np.array(flat, dtype=np.int16).reshape(grid["height"], grid["width"])


def cell_xy(page, col: int, row: int) -> tuple[float, float]:
    """The page position of a grid cell's centre."""
    px, py = page.evaluate("([c, r]) => earthplat.cell(c, r)", [col, row])
    box = page.locator(tid("map")).bounding_box()
    return box["x"] + px, box["y"] + py


def stroke(page, cells: list[tuple[int, int]]) -> None:
    """Press at the first cell, move through the others, release."""
    page.mouse.move(*cell_xy(page, *cells[0]))
    page.mouse.down()
    for c in cells[1:]:
        page.mouse.move(*cell_xy(page, *c), steps=6)
    page.mouse.up()


def test_paint_erase_undo_redo_save_reload_and_the_export_equals_the_pixels(page, platform):
    from api.jobs.worker import run_worker
    from earthplat.data.dataset import Dataset

    window = platform["windows"][0]
    labeler = api(platform)
    sign_in(page, platform, platform["keys"]["labeler"])
    open_window(page, platform, window)
    page.wait_for_function("document.querySelector('.map').dataset.imagery === 'ready'")
    assert (labels(page) == -1).all()

    # water with a 3-pixel brush along row 12, columns 10 -> 30
    page.check(tid("class-1"))
    page.click(tid("tool-brush"))
    page.fill(tid("brush-size"), "3")
    page.dispatch_event(tid("brush-size"), "change")
    stroke(page, [(10, 12), (30, 12)])
    painted = labels(page)
    assert (painted[11:14, 10:31] == 1).all(), "a 3-px brush covers rows 11-13 along the stroke"
    assert (painted[:10] == -1).all() and (painted[15:] == -1).all()
    wait_summary(page, "1 annotation(s), 1 unsaved")

    # land by filling the empty region that holds cell (2, 40): everything not water
    page.check(tid("class-0"))
    page.click(tid("tool-fill"))
    page.mouse.click(*cell_xy(page, 2, 40))
    filled = labels(page)
    assert ((filled == 0) == (painted == -1)).all() and (filled[painted == 1] == 1).all()

    # erase a 1-pixel gap into the water stroke
    page.click(tid("tool-eraser"))
    page.fill(tid("brush-size"), "1")
    page.dispatch_event(tid("brush-size"), "change")
    stroke(page, [(20, 12), (20, 12)])
    erased = labels(page)
    assert erased[12, 20] == -1 and erased[11, 20] == 1 and (erased != -1).sum() == erased.size - 1

    # undo the eraser, undo the fill, redo both
    page.click(tid("undo"))
    assert (labels(page) == filled).all()
    page.click(tid("undo"))
    assert (labels(page) == painted).all()
    page.click(tid("redo"))
    page.click(tid("redo"))
    assert (labels(page) == erased).all()
    assert page.is_disabled(tid("redo"))

    # save: one mask annotation per class, exactly the painted pixels
    page.click(tid("save"))
    wait_summary(page, "2 annotation(s), 0 unsaved")
    anns = labeler.get(f"/windows/{window['id']}/annotations").json()
    assert sorted(a["class_value"] for a in anns) == [0, 1] and all(a["mask"] for a in anns)

    # undo works across the save: the gap closes, and saving again stores that
    page.click(tid("undo"))
    wait_summary(page, "2 annotation(s), 1 unsaved")
    page.click(tid("save"))
    wait_summary(page, "2 annotation(s), 0 unsaved")
    page.reload()
    page.wait_for_selector(tid("ann-summary"))
    wait_summary(page, "2 annotation(s), 0 unsaved")
    final = labels(page)
    assert (final == filled).all(), "after a reload the page shows what was saved"

    # export (the platform's export job) rasterizes the masks pixel for pixel
    r = labeler.post(f"/windows/{window['id']}/submit")
    assert r.status_code == 200, r.text
    client = platform["client"]
    r = client.post(
        f"/api/v1/projects/{platform['project']['id']}/jobs",
        json={
            "kind": "export_dataset",
            "payload": {"windows": [window["id"]], "statuses": ["submitted"]},
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    run_worker(platform["settings"], once=True, install_signals=False)
    job = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=ADMIN).json()
    assert job["status"] == "succeeded", job["message"]
    import rasterio

    ds = Dataset(job["result"]["path"])
    with rasterio.open(ds.layer_path(window["name"], "label")) as src:
        raster = src.read(1)
    assert raster.shape == final.shape
    for value in (0, 1):
        assert ((raster == value) == (final == value)).all(), f"class {value} differs"


def test_the_keyboard_drives_every_tool_and_the_overlay_lists_the_keys(page, platform):
    window = platform["windows"][1]
    labeler = api(platform)
    sign_in(page, platform, platform["keys"]["labeler"])
    open_window(page, platform, window)
    page.wait_for_function("document.querySelector('.map').dataset.imagery === 'ready'")
    page.locator(tid("map")).click()  # focus on the map, as a person would

    # digits pick a class; letters pick a tool
    page.keyboard.press("2")
    assert page.is_checked(tid("class-1"))
    page.keyboard.press("1")
    assert page.is_checked(tid("class-0"))
    for key, tool in (
        ("b", "brush"),
        ("e", "eraser"),
        ("f", "fill"),
        ("o", "point"),
        ("h", "hole"),
        ("a", "polygon"),
        ("v", "select"),
    ):
        page.keyboard.press(key)
        assert "active" in page.get_attribute(tid(f"tool-{tool}"), "class"), key

    # Esc drops a half-drawn polygon; the next one is drawn from scratch
    page.keyboard.press("a")
    map_click(page, -80, -80)
    map_click(page, 80, -80)
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert summary(page).startswith("0 annotation(s)")
    square = [(-120, -120), (120, -120), (120, 120), (-120, 120)]
    for dx, dy in square:
        map_click(page, dx, dy)
    map_click(page, *square[0])
    wait_summary(page, "1 annotation(s), 1 unsaved")

    # a hole cut into it with H
    page.keyboard.press("h")
    hole = [(-40, -40), (40, -40), (0, 40)]
    for dx, dy in hole:
        map_click(page, dx, dy)
    map_click(page, *hole[0])
    page.wait_for_function(
        "document.querySelector(\"[data-testid='ann-list']\").innerText.includes('1 hole')"
    )

    # Ctrl+S saves; the server holds a polygon with one interior ring
    page.keyboard.press("Control+s")
    wait_summary(page, "1 annotation(s), 0 unsaved")
    (ann,) = labeler.get(f"/windows/{window['id']}/annotations").json()
    assert ann["geometry"]["type"] == "Polygon" and len(ann["geometry"]["coordinates"]) == 2

    # Delete removes the selection; Ctrl+Z brings it back, Ctrl+Shift+Z removes it again
    select_at(page, -90, 0)
    page.keyboard.press("Delete")
    wait_summary(page, "0 annotation(s), 1 unsaved")
    page.keyboard.press("Control+z")
    wait_summary(page, "1 annotation(s), 0 unsaved")
    page.keyboard.press("Control+Shift+z")
    wait_summary(page, "0 annotation(s), 1 unsaved")
    page.keyboard.press("Control+z")
    wait_summary(page, "1 annotation(s), 0 unsaved")

    # L hides every annotation while looking, and shows them again
    page.keyboard.press("l")
    assert page.is_checked(tid("hide-annotations"))
    page.keyboard.press("l")
    assert not page.is_checked(tid("hide-annotations"))

    # arrows move in time
    assert page.inner_text(tid("time-label")).startswith("t=1")
    page.keyboard.press("ArrowLeft")
    assert page.inner_text(tid("time-label")).startswith("t=0")
    page.keyboard.press("ArrowRight")
    assert page.inner_text(tid("time-label")).startswith("t=1")

    # ? shows the list of keys, Esc closes it
    page.keyboard.press("?")
    overlay = page.locator(tid("shortcuts"))
    assert overlay.is_visible()
    text = overlay.inner_text()
    for keys in ("Ctrl+Z", "Esc", "Delete", "Enter", "N / P", "?"):
        assert keys in text, keys
    page.keyboard.press("Escape")
    assert not overlay.is_visible()

    # Enter submits
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector(\"[data-testid='status']\").innerText === 'submitted'"
    )
    assert labeler.get(f"/windows/{window['id']}").json()["status"] == "submitted"

    # N opens the next task, P the window before it
    page.keyboard.press("n")
    wid = window["id"]
    page.wait_for_url(re.compile(rf"#/projects/\d+/windows/(?!{wid}$)\d+$"))
    page.wait_for_selector(tid("ann-summary"))
    page.keyboard.press("p")
    page.wait_for_url(re.compile(rf"#/projects/\d+/windows/{wid}$"))


def test_a_window_opens_on_imagery_and_a_time_step_never_shows_another_steps_pixels(page, platform):
    window = platform["windows"][2]
    info = api(platform).get(f"/tiles/{window['id']}").json()
    assert [layer["name"] for layer in info["layers"]] == ["label", "s2"]

    # hold the t=0 image back, to look at the map while it loads
    held: list = []
    page.route(
        re.compile(rf"/api/v1/tiles/{window['id']}/s2/(frame/0\.png|0/)"),
        lambda route: held.append(route),
    )
    sign_in(page, platform, platform["keys"]["labeler"])
    open_window(page, platform, window)
    assert page.input_value(tid("layer-select")) == "s2", "opens on imagery, not the label map"
    # the label layer is an overlay over the imagery, with an opacity, not a layer to open on
    assert page.locator(f"{tid('layer-select')} option").all_inner_texts() == ["s2"]
    page.select_option(tid("overlay-select"), "label")
    page.wait_for_function("earthplat.overlay().state === 'ready'")
    assert all("/label/" in u for u in page.evaluate("earthplat.overlay().requested"))
    page.select_option(tid("overlay-select"), "")
    assert page.is_disabled(tid("overlay-opacity"))
    page.wait_for_function("document.querySelector('.map').dataset.imagery === 'ready'")
    assert page.inner_text(tid("time-label")).startswith("t=1")
    assert "acquired 2019-09-18" in page.inner_text(tid("time-facts"))
    centre = page.evaluate(
        "(() => { const g = earthplat.grid; return earthplat.cell(g.width / 2, g.height / 2); })()"
    )
    page.click(tid("hide-annotations"))
    t1 = page.evaluate("p => earthplat.imageryPixel(p)", centre)
    assert t1 and t1[3] == 255, "t=1 holds the S2 scene"
    requested = page.evaluate("earthplat.imagery().requested")
    assert requested and all(re.search(r"/s2/(frame/1\.png|1/)", u) for u in requested)

    # t=0 (an empty period) while its image is held: the map says it is loading and shows
    # nothing of t=1
    page.locator(tid("time-slider")).press("ArrowLeft")
    page.wait_for_function("document.querySelector('.map').dataset.imagery === 'loading'")
    assert page.inner_text(tid("time-label")).startswith("t=0")
    page.wait_for_timeout(400)
    during = page.evaluate("p => earthplat.imageryPixel(p)", centre)
    assert during is None or during[3] == 0, f"t=1's pixels stayed on screen: {during}"
    requested = page.evaluate("earthplat.imagery().requested")
    assert requested and all(re.search(r"/s2/(frame/0\.png|0/)", u) for u in requested)
    while not held:
        page.wait_for_timeout(50)
    for route in held:
        route.continue_()
    page.wait_for_function("document.querySelector('.map').dataset.imagery === 'ready'")
    after = page.evaluate("p => earthplat.imageryPixel(p)", centre)
    assert after is None or after[3] == 0, "t=0 has no data: transparent"

    # back to t=1: its pixels again, the same as before
    page.locator(tid("time-slider")).press("ArrowRight")
    page.wait_for_function(
        "document.querySelector('.map').dataset.imagery === 'ready' && "
        "document.querySelector('.map').dataset.imageryStep.startsWith('s2/1/')"
    )
    assert page.evaluate("p => earthplat.imageryPixel(p)", centre) == t1


def test_merge_two_polygons_of_a_class_then_split_one_along_a_line(page, platform):
    from shapely.geometry import shape

    window = platform["windows"][2]
    labeler = api(platform)
    sign_in(page, platform, platform["keys"]["labeler"])
    open_window(page, platform, window)
    page.check(tid("class-1"))
    for offsets in (
        [(-150, -60), (-10, -60), (-10, 60), (-150, 60)],
        [(10, -60), (150, -60), (150, 60), (10, 60)],
    ):
        page.keyboard.press("a")
        for dx, dy in offsets:
            map_click(page, dx, dy)
        map_click(page, *offsets[0])
    wait_summary(page, "2 annotation(s), 2 unsaved")

    # select both (Shift+click adds), merge: saved first, then one annotation on the server
    select_at(page, -80, 0)
    page.wait_for_timeout(300)
    page.keyboard.down("Shift")
    map_click(page, 80, 0)
    page.keyboard.up("Shift")
    page.wait_for_function(
        "document.querySelector(\"[data-testid='ann-summary']\").innerText.endsWith(' 2 selected')"
    )
    page.keyboard.press("m")
    wait_summary(page, "1 annotation(s), 0 unsaved")
    (merged,) = labeler.get(f"/windows/{window['id']}/annotations").json()
    assert merged["class_value"] == 1 and merged["geometry"]["type"] == "MultiPolygon"

    # undo takes the merge back (two again, to be saved)
    page.keyboard.press("Control+z")
    wait_summary(page, "2 annotation(s)")
    page.keyboard.press("Control+s")
    wait_summary(page, "2 annotation(s), 0 unsaved")
    anns = labeler.get(f"/windows/{window['id']}/annotations").json()
    assert sorted(a["geometry"]["type"] for a in anns) == ["Polygon", "Polygon"]

    # split the left polygon along a vertical line through it
    page.keyboard.press("s")
    map_click(page, -80, -120)
    page.wait_for_timeout(300)
    page.mouse.dblclick(*map_point(page, -80, 120))
    wait_summary(page, "3 annotation(s), 0 unsaved")
    anns = labeler.get(f"/windows/{window['id']}/annotations").json()
    areas = sorted(shape(a["geometry"]).area for a in anns)
    assert len(anns) == 3 and areas[0] < areas[2] * 0.8  # two halves and the untouched right one


def test_context_around_the_window_and_a_second_step_behind_the_swipe(page, platform):
    window = platform["windows"][2]
    context_tiles: list[str] = []
    page.on(
        "response",
        lambda r: context_tiles.append(r.url) if "/context/" in r.url and r.status == 200 else None,
    )
    sign_in(page, platform, platform["keys"]["labeler"])
    open_window(page, platform, window)
    page.wait_for_function("document.querySelector('.map').dataset.imagery === 'ready'")
    # the overview built at materialize time lies under the window
    page.wait_for_function(
        "document.querySelector(\"[data-testid='context-info']\").innerText.includes('s2')"
    )
    page.wait_for_timeout(500)
    assert context_tiles and all(f"/tiles/{window['id']}/s2/context/" in u for u in context_tiles)
    n = len(context_tiles)
    page.uncheck(tid("context-toggle"))
    page.wait_for_timeout(300)
    page.check(tid("context-toggle"))

    # compare: the other step is asked for, and moving the swipe line redraws the map
    assert page.is_disabled(tid("compare-select"))
    page.check(tid("compare-toggle"))
    page.wait_for_function("earthplat.compare().state === 'ready'")
    compared = page.evaluate("earthplat.compare()")
    assert compared["step"].startswith("s2/0/") and compared["requested"]
    assert all(re.search(r"/s2/(frame/0\.png|0/)", u) for u in compared["requested"])
    assert not page.is_disabled(tid("swipe"))
    page.locator(tid("swipe")).fill("20")
    page.uncheck(tid("compare-toggle"))
    assert page.is_disabled(tid("compare-select"))
    assert len(context_tiles) >= n
