"""The model loop in the browser, end to end, on the demo data (the real Sen1Floods11 chip).

A real server (uvicorn on loopback, SQLite) and a real job worker (a thread polling the same
database) with a project of materialised windows, six of them labelled with the chip's real hand
labels and accepted. Then, in headless chromium, as each role would:

1. a labeller labels a window (draws a polygon, saves, submits);
2. the admin signs in with their key without signing out (the header and the controls follow),
   starts a short fine-tune from the project page (with an ETA), watches it finish, sees the
   model in the registry, and starts inference over all windows;
3. the labeller opens an unlabelled window: the prediction is on the map (its tile requests
   answer PNGs, and the rendered map shows the legend's colours), turns it into pre-labels,
   edits one, and submits;
4. the reviewer sees which annotations the model made and which a person changed, and accepts;
5. the admin builds the embedding index from the window's "more like this" panel; the labeller
   sees similar windows with thumbnails and queues one;
6. the reviewer opens the likely-wrong ranking.

Screenshots of each step are written to ``runs/test-artifacts/model_loop/``.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.browser.helpers import (
    draw_polygon,
    need_components,
    select_at,
    sign_in,
    switch_without_signing_out,
    tid,
    wait_summary,
)
from tests.conftest import REPO
from tests.integration.platform.conftest import (
    ADMIN,
    ADMIN_KEY,
    CLASSES,
    live_server,
    make_project,
    make_user,
)
from tests.integration.platform.test_job_flow import (
    UPLOADS,
    _label_polygons,
    tiny_finetune,
    upload_chip,
    windows_with_data,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SHOTS = REPO / "runs" / "test-artifacts" / "model_loop"
N_LABELLED = 6


def wait_job(client: httpx.Client, job_id: int, timeout: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout:.0f} s")


@pytest.fixture(scope="module")
def loop(tmp_path_factory, shared_data: Path):
    """{base, pid, labelled, free, keys, ids, client}: a project over the chip whose first six
    windows carry accepted real hand labels, with a worker running."""
    need_components()
    from api.jobs.worker import run_worker
    from api.settings import Settings

    root = tmp_path_factory.mktemp("loop")
    data_dir = root / "data"
    data_dir.mkdir()
    db_url = f"sqlite:///{root / 'earthplat.db'}"
    with live_server(db_url, data_dir) as base:
        stop = threading.Event()
        settings = Settings(data_dir=data_dir, database_url=db_url, admin_key=ADMIN_KEY)
        worker = threading.Thread(
            target=run_worker,
            args=(settings,),
            kwargs={"poll_interval": 0.3, "stop_event": stop, "install_signals": False},
            daemon=True,
        )
        worker.start()
        client = httpx.Client(base_url=base, timeout=120)
        try:
            pid = make_project(client, name="loop")["id"]
            _, chosen = windows_with_data(client, pid, shared_data, N_LABELLED + 3)
            ids = [w["id"] for w in chosen]
            upload_chip(client, pid, shared_data, ("s2", "label"))
            layers = [
                {"source": n, "layer": n, "period": "15d", **UPLOADS[n][2]} for n in ("s2", "label")
            ]
            r = client.post(
                f"/api/v1/projects/{pid}/jobs",
                json={"kind": "materialize", "payload": {"layers": layers, "windows": ids}},
                headers=ADMIN,
            )
            assert r.status_code == 201, r.text
            assert wait_job(client, r.json()["id"])["status"] == "succeeded"
            keys, users = {}, {}
            for role in ("labeler", "reviewer"):
                users[role], headers = make_user(client, f"loop-{role}", project_id=pid, role=role)
                keys[role] = headers["Authorization"].split()[1]
            reviewer = {"Authorization": f"Bearer {keys['reviewer']}"}
            ds_root = client.get(f"/api/v1/projects/{pid}/datasets", headers=ADMIN).json()[0]
            for w in chosen[:N_LABELLED]:  # the admin labels, the reviewer accepts
                for geom, value in _label_polygons(ds_root["path"], w["name"]):
                    r = client.post(
                        f"/api/v1/windows/{w['id']}/annotations",
                        json={"geometry": geom, "class_value": value},
                        headers=ADMIN,
                    )
                    assert r.status_code == 201, r.text
                client.post(f"/api/v1/windows/{w['id']}/submit", headers=ADMIN).raise_for_status()
                client.post(
                    f"/api/v1/windows/{w['id']}/reviews",
                    json={"decision": "accept"},
                    headers=reviewer,
                ).raise_for_status()
            yield {
                "base": base,
                "pid": pid,
                "labelled": chosen[:N_LABELLED],
                "free": chosen[N_LABELLED:],
                "keys": keys,
                "users": users,
                "client": client,
            }
        finally:
            stop.set()
            worker.join(30)
            client.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def rendered_map(page) -> np.ndarray:
    from PIL import Image

    png = page.locator(tid("map")).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def has_colour(img: np.ndarray, hex_colour: str, tol: int = 12) -> float:
    """Share of the image's pixels within ``tol`` of the colour."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(img - rgb).max(axis=-1) <= tol).mean())


def open_project(page, loop) -> None:
    page.goto(f"{loop['base']}/#/projects/{loop['pid']}")
    page.wait_for_selector(tid("windows"))


def wait_job_row(page, kind: str, status: str = "succeeded", timeout_ms: int = 240_000) -> str:
    """Wait on the jobs page until the newest job of ``kind`` shows ``status``; its row id."""
    page.wait_for_function(
        """([kind, status]) => {
          const rows = [...document.querySelectorAll("tr[data-testid^='job-']")]
            .filter(r => r.querySelector("[data-testid='job-kind']")?.innerText === kind);
          const s = rows.length && rows[0].querySelector("[data-testid='status']").innerText;
          return s === status;
        }""",
        arg=[kind, status],
        timeout=timeout_ms,
    )
    rows = page.locator("tr[data-testid^='job-']").filter(has=page.locator(f"text={kind}"))
    return rows.first.get_attribute("data-testid")


def test_the_model_loop_in_the_browser(page, loop):
    base, pid, client = loop["base"], loop["pid"], loop["client"]
    target, other = loop["free"][0], loop["free"][1]

    # 1. a labeller labels a window from "next task"
    sign_in(page, {"base": base}, loop["keys"]["labeler"])
    assert page.inner_text(tid("user-name")) == "loop-labeler"
    open_project(page, loop)
    assert page.inner_text(tid("my-role")) == "labeler"
    assert page.locator(tid("run-panel")).count() == 0  # a labeller cannot start jobs
    assert page.locator(tid("review-link")).count() == 0
    assert page.locator(tid("next-task")).count() == 1
    page.click(tid(f"window-{target['id']}"))
    page.wait_for_selector(tid("ann-summary"))
    page.click(tid("claim-btn"))
    page.wait_for_function("document.querySelector('.map canvas') !== null")
    page.wait_for_function(
        "document.querySelector(\"[data-testid='claim']\").innerText.startsWith('Claimed by you')"
    )
    page.check(tid("class-1"))
    draw_polygon(page, [(-60, -60), (60, -60), (60, 60), (-60, 60)])
    page.click(tid("save"))
    wait_summary(page, "1 annotation(s), 0 unsaved")
    shot(page, "1-labelled")
    # release it for now: the model's pre-labels come later
    page.click(tid("release-btn"))
    page.wait_for_function(
        "document.querySelector(\"[data-testid='claim']\").innerText.startsWith('Nobody')"
    )

    # 2. the admin signs in over the labeller (no sign-out) and fine-tunes from the project page
    switch_without_signing_out(page, ADMIN_KEY)
    assert page.inner_text(tid("user-name")) == "admin"
    open_project(page, loop)
    assert page.inner_text(tid("my-role")) == "admin"
    counts = page.inner_text(tid("window-counts"))
    assert f"{N_LABELLED} " in counts and "accepted" in counts
    page.click(tid("run-finetune"))
    encoders = page.locator(f"{tid('ft-encoder')} option").evaluate_all(
        "os => os.map(o => o.value)"
    )
    assert "preset:pico" in encoders
    page.select_option(tid("ft-encoder"), "preset:pico")
    page.fill(tid("ft-steps"), "4")
    page.fill(tid("ft-batch"), "2")
    page.fill(tid("ft-chip"), "32")
    page.fill(tid("ft-head"), "linear")
    rest = {
        k: v
        for k, v in tiny_finetune().items()
        if k
        not in (
            "model.backbone.encoder",
            "model.head",
            "data.config.batch_size",
            "data.config.chip_size",
            "trainer.max_steps",
        )
    }
    import json

    page.fill(tid("ft-overrides"), json.dumps(rest))
    assert page.inner_text(tid("ft-eta")).startswith("ETA: unknown")  # nothing measured yet
    shot(page, "2-finetune-form")
    page.click(tid("ft-start"))
    page.wait_for_url(f"**/#/projects/{pid}/jobs")
    wait_job_row(page, "finetune")
    shot(page, "3-finetune-done")
    jobs = client.get(f"/api/v1/projects/{pid}/jobs?kind=finetune", headers=ADMIN).json()
    assert jobs[0]["status"] == "succeeded" and jobs[0]["payload"]["encoder"] == "preset:pico"
    # its artefacts are listed and download through the UI
    row = page.locator(tid(f"job-{jobs[0]['id']}"))
    row.locator(tid(f"files-{jobs[0]['id']}")).click()
    page.wait_for_selector(tid("artifact-metrics.json"))
    with page.expect_download() as dl:
        page.click(tid("artifact-metrics.json"))
    assert json.loads(Path(dl.value.path()).read_text())
    # the ETA now comes from the measured run
    open_project(page, loop)
    page.click(tid("run-finetune"))
    page.select_option(tid("ft-encoder"), "preset:pico")
    page.wait_for_function(
        "document.querySelector(\"[data-testid='ft-eta']\").innerText.includes('samples/s')"
    )

    # the registry shows the model with its metrics and base encoder
    page.goto(f"{base}/#/projects/{pid}/models")
    page.wait_for_selector(tid("models"))
    (model,) = client.get(f"/api/v1/models?project_id={pid}", headers=ADMIN).json()
    row = page.locator(tid(f"model-{model['id']}"))
    assert "pico" in row.locator(tid("model-encoder")).inner_text()
    assert row.locator(tid("model-metrics")).inner_text().strip() not in ("", "none")
    shot(page, "4-models")

    # inference over all windows, from the project page
    open_project(page, loop)
    page.click(tid("run-inference"))
    page.select_option(tid("inf-model"), str(model["id"]))
    page.select_option(tid("inf-scope"), "all")
    page.click(tid("inf-start"))
    page.wait_for_url(f"**/#/projects/{pid}/jobs")
    wait_job_row(page, "inference")
    (inference,) = client.get(f"/api/v1/projects/{pid}/jobs?kind=inference", headers=ADMIN).json()
    assert inference["status"] == "succeeded"

    # 3. the labeller sees the prediction on the map and turns it into pre-labels
    switch_without_signing_out(page, loop["keys"]["labeler"])
    assert page.inner_text(tid("user-name")) == "loop-labeler"
    tiles: list[tuple[str, int, str]] = []
    page.on(
        "response",
        lambda r: (
            tiles.append((r.url, r.status, r.headers.get("content-type", "")))
            if "/predictions/" in r.url and r.url.split("?")[0].endswith(".png")
            else None
        ),
    )
    page.goto(f"{base}/#/projects/{pid}/windows/{target['id']}")
    page.wait_for_selector(tid("predictions"))
    page.wait_for_function("document.querySelector('.map canvas') !== null")
    page.wait_for_timeout(1500)
    ours = [t for t in tiles if f"/tiles/{target['id']}/predictions/{inference['id']}/" in t[0]]
    assert ours and all(s == 200 and c == "image/png" for _, s, c in ours), tiles
    legend = page.inner_text(tid("prediction-legend"))
    assert "land" in legend and "water" in legend
    # at full opacity the map shows the predicted classes in the legend's colours
    page.locator(tid("prediction-opacity")).fill("100")
    page.wait_for_timeout(800)
    img = rendered_map(page)
    share = sum(has_colour(img, c["color"]) for c in CLASSES)
    assert share > 0.05, share
    page.uncheck(tid("prediction-toggle"))
    page.wait_for_timeout(800)
    assert sum(has_colour(rendered_map(page), c["color"]) for c in CLASSES) < share / 2
    page.check(tid("prediction-toggle"))
    shot(page, "5-prediction-overlay")

    page.click(tid("use-prediction"))
    page.wait_for_function(
        "document.querySelector(\"[data-testid='ann-provenance']\").innerText.includes('model-made')"
    )
    anns = client.get(f"/api/v1/windows/{target['id']}/annotations", headers=ADMIN).json()
    made = [a for a in anns if a["origin"] == "model"]
    assert made and all(a["model_id"] == model["id"] and not a["edited"] for a in made)
    human = [a for a in anns if a["origin"] == "human"]
    assert len(human) == 1  # the labeller's own polygon is kept
    # edit one pre-label: select it (the labeller's polygon covers the centre: pick the
    # model-made one through the API's geometry) and re-class it
    page.locator(tid("prediction-toggle")).uncheck()
    edited_id = _edit_one_prelabel(page, made, human)
    page.click(tid("save"))
    page.wait_for_function(
        "document.querySelector(\"[data-testid='ann-provenance']\").innerText.includes('1 edited')"
    )
    after = {
        a["id"]: a
        for a in client.get(f"/api/v1/windows/{target['id']}/annotations", headers=ADMIN).json()
    }
    assert after[edited_id]["edited"] is True and after[edited_id]["origin"] == "model"
    shot(page, "6-prelabels-edited")
    page.click(tid("submit"))
    page.wait_for_selector(f"{tid('status')}:text('submitted')")

    # 4. the reviewer sees what the model made and what a person changed, and accepts
    switch_without_signing_out(page, loop["keys"]["reviewer"])
    page.goto(f"{base}/#/projects/{pid}/review/{target['id']}")
    page.wait_for_selector(tid("review-annotations"))
    marks = page.locator(tid("ann-origin")).all_inner_texts()
    assert "model, changed by a person" in marks and "person" in marks
    assert "model-made, unchanged" in marks or len(made) == 1
    shot(page, "7-review")
    page.click(tid("accept"))
    page.wait_for_url(f"**/#/projects/{pid}/review")
    assert client.get(f"/api/v1/windows/{target['id']}", headers=ADMIN).json()["status"] == (
        "accepted"
    )
    # export records the provenance
    fc = client.get(
        f"/api/v1/projects/{pid}/export/geojson", params={"status": "accepted"}, headers=ADMIN
    ).json()
    mine = [
        f["properties"]
        for f in fc["features"]
        if f["properties"].get("window_id") == target["id"]
        or f["properties"].get("window") == target["name"]
    ]
    assert any(p.get("origin") == "model" and p.get("edited") for p in mine), mine[:3]

    # 5. more like this: no index yet; the admin builds it from the panel
    switch_without_signing_out(page, ADMIN_KEY)
    page.goto(f"{base}/#/projects/{pid}/windows/{other['id']}")
    page.wait_for_selector(tid("similar-missing"))
    page.click(tid("similar-build"))
    deadline = time.monotonic() + 240
    while True:
        emb = client.get(f"/api/v1/projects/{pid}/jobs?kind=embeddings", headers=ADMIN).json()
        if emb and emb[0]["status"] in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert emb[0]["status"] == "succeeded", emb[0]
    switch_without_signing_out(page, loop["keys"]["labeler"])
    page.goto(f"{base}/#/projects/{pid}/windows/{other['id']}")
    page.wait_for_selector("[data-testid^='similar-pick-']")
    picks = page.locator("[data-testid^='similar-pick-']")
    assert picks.count() >= 3
    page.wait_for_function(
        "[...document.querySelectorAll('img.thumb')].some(i => i.naturalWidth > 0)"
    )
    chosen = int(picks.first.get_attribute("value"))
    picks.first.check()
    page.click(tid("similar-queue"))
    # the notice of this action, not one still showing from an earlier one
    page.wait_for_function("document.getElementById('notice').innerText.includes('to your queue')")
    queue = client.get(
        f"/api/v1/projects/{pid}/assignments?user_id={loop['users']['labeler']}", headers=ADMIN
    ).json()
    assert [a["window_id"] for a in queue] == [chosen]
    shot(page, "8-similar")

    # 6. the reviewer opens the likely-wrong ranking
    switch_without_signing_out(page, loop["keys"]["reviewer"])
    page.goto(f"{base}/#/projects/{pid}/likely-wrong")
    page.wait_for_selector(tid("likely-table"))
    scores = [
        float(t.strip().split()[-2]) for t in page.locator(tid("likely-score")).all_inner_texts()
    ]
    assert len(scores) >= N_LABELLED and scores == sorted(scores, reverse=True)
    shot(page, "9-likely-wrong")


def _edit_one_prelabel(page, made, human) -> int:
    """Select a model-made polygon on the map (at a point outside the labeller's own polygon)
    and give it the other class; its id."""
    from shapely.geometry import shape

    people = shape(human[0]["geometry"]).buffer(1e-5)
    polys = sorted(
        (a for a in made if a["geometry"]["type"] in ("Polygon", "MultiPolygon")),
        key=lambda a: -shape(a["geometry"]).difference(people).area,
    )
    target = polys[0]
    inside = shape(target["geometry"]).difference(people).buffer(-2e-5).representative_point()
    box = page.locator(tid("map")).bounding_box()
    px = page.evaluate("([lon, lat]) => window.earthplat.pixelOf([lon, lat])", [inside.x, inside.y])
    select_at(page, px[0] - box["width"] / 2, px[1] - box["height"] / 2)
    page.check(tid(f"class-{1 - target['class_value']}"))
    return target["id"]
