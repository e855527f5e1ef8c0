"""One time-slider step in the browser: from moving the slider to the new step's pixels on
screen, measured with Playwright in Debian's chromium against a live server (loopback, SQLite).

    .venv/bin/python bench/ui_slider.py [--rounds 3]        # alone on an idle machine

Data: the real Sentinel-2 L1C time series of ``../shared/data/real/s2_slovenia_eolearn`` (five
dates, 13 bands), uploaded and materialised by the platform's own jobs into a 64 px window
with one period per date. The labelling view opens the window at 1280x800; the script steps
through every time step forward (each step's first showing: nothing cached in the browser)
and back (revisits), then a second labeller (a new browser context) does the same on the same
server (its render cache warm), timing in the page from the slider's input event to the map's
``data-imagery="ready"`` (the step's images loaded and drawn; see labeling/web/src/
imagerylayer.js).

The labeller looks at each step for ``--dwell`` seconds (1 by default) before the next, which is
when the neighbouring steps are fetched ahead.

Rows, each on a fresh server process and an empty render cache:
- baseline: XYZ tiles with the render cache off (``EARTHPLAT_TILE_CACHE=0``; every tile
  rendered on request, as before the cache) and nothing fetched ahead;
- ours, tiles: XYZ tiles with the render cache, without and with the neighbouring steps' tiles
  in view fetched ahead (XYZ is what windows larger than one frame get);
- ours, frames: one image per step (``/frame/{t}.png``) with the cache and the neighbouring
  steps fetched ahead (the UI's default for windows up to 1024 px).

Target (issue 14): a step of a 24-tile view ready in under 300 ms. Prints a table and writes
``bench/results/ui_slider.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("EARTHPLAT_SHARED_DATA", REPO.parent / "shared" / "data"))
SERIES = SHARED / "real" / "s2_slovenia_eolearn" / "s2_l1c_5dates_13bands.tif"
CHROMIUM = Path("/usr/bin/chromium")

STEP_JS = """async (t) => {
  const map = document.querySelector('.map');
  const slider = document.querySelector("[data-testid='time-slider']");
  const t0 = performance.now();
  slider.value = String(t);
  slider.dispatchEvent(new Event('input'));
  await new Promise((done) => {
    const check = () => (map.dataset.imagery === 'ready' &&
      map.dataset.imageryStep.split('/')[1] === String(t)) ? done() : requestAnimationFrame(check);
    check();
  });
  return [performance.now() - t0, earthplat.imagery().requested.length];
}"""


def seed(client: httpx.Client, admin: dict) -> tuple[int, dict]:
    """A project with one 64 px window over the series, its imagery materialised (one period
    per date). Returns (project id, window)."""
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(SERIES) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    cx, cy = (west + east) / 2, (south + north) / 2
    r = client.post(
        "/api/v1/projects",
        json={
            "name": "slider-bench",
            "task_type": "segmentation",
            "classes": [{"value": 0, "label": "a"}, {"value": 1, "label": "b"}],
            "sensors": ["sentinel2_l1c"],
            "start": "2015-07-01",
            "end": "2015-09-30",
        },
        headers=admin,
    )
    r.raise_for_status()
    pid = r.json()["id"]
    r = client.post(
        f"/api/v1/projects/{pid}/windows/aoi",
        json={
            "bbox": [cx - 0.0005, cy - 0.0005, cx + 0.0005, cy + 0.0005],
            "start": "2015-07-01",
            "end": "2015-09-30",
            "size": 64,
        },
        headers=admin,
    )
    r.raise_for_status()
    window = r.json()["windows"][0]
    r = client.post(
        f"/api/v1/projects/{pid}/layers/upload",
        files={"file": (SERIES.name, SERIES.read_bytes(), "image/tiff")},
        data={"name": "s2", "modality": "sentinel2_l1c"},
        headers=admin,
    )
    r.raise_for_status()
    return pid, window


def materialize(client, admin, settings, pid: int, window: dict) -> None:
    from api.jobs.worker import run_worker

    r = client.post(
        f"/api/v1/projects/{pid}/jobs",
        json={
            "kind": "materialize",
            "payload": {
                "layers": [{"source": "s2", "layer": "s2", "period": "10d"}],
                "windows": [window["id"]],
            },
        },
        headers=admin,
    )
    r.raise_for_status()
    run_worker(settings, once=True, install_signals=False)
    job = client.get(f"/api/v1/jobs/{r.json()['id']}", headers=admin).json()
    if job["status"] != "succeeded":
        raise SystemExit(f"materialize failed: {job['message']}")


def measure(
    browser, base: str, key: str, pid: int, window: dict, mode: str, prefetch: bool, dwell: float
) -> dict:
    """Step through every time step forward, then back; ``dwell`` seconds on each step."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(base + "/")
    page.evaluate(
        "([k, m, p]) => { localStorage.setItem('earthplat.key', k); "
        "localStorage.setItem('earthplat.imagery', m); "
        "localStorage.setItem('earthplat.prefetch', p); }",
        [key, mode, "on" if prefetch else "off"],
    )
    page.goto(f"{base}/#/projects/{pid}/windows/{window['id']}")
    try:
        page.wait_for_function("document.querySelector('.map')?.dataset.imagery === 'ready'")
    except Exception:
        print(page.inner_text("body")[:2000], file=sys.stderr)
        raise
    info = httpx.get(
        f"{base}/api/v1/tiles/{window['id']}", headers={"Authorization": f"Bearer {key}"}
    ).json()
    layer = next(x for x in info["layers"] if x["name"] == "s2")
    steps = [t for t in range(len(layer["periods"])) if t not in layer["missing_periods"]]
    start = int(page.input_value("[data-testid='time-slider']"))
    order = [t for t in steps if t != start]
    first, again, requests = [], [], []
    page.wait_for_timeout(1000 * dwell)
    for t in order:  # each step's first showing
        ms, n = page.evaluate(STEP_JS, t)
        first.append(ms)
        requests.append(n)
        page.wait_for_timeout(1000 * dwell)  # the labeller looks at the step
    for t in reversed([start, *order[:-1]]):  # revisits
        ms, _ = page.evaluate(STEP_JS, t)
        again.append(ms)
        page.wait_for_timeout(1000 * dwell)
    context.close()
    return {"first": first, "again": again, "requests": requests, "steps": len(steps)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="page loads per row")
    parser.add_argument(
        "--dwell", type=float, default=1.0, help="seconds the labeller looks at each step"
    )
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "ui_slider.md"))
    args = parser.parse_args()
    if not CHROMIUM.is_file() or not SERIES.is_file():
        raise SystemExit(f"needs {CHROMIUM} and {SERIES}")
    from playwright.sync_api import sync_playwright

    from api.settings import Settings
    from tests.integration.platform.conftest import ADMIN_KEY, live_server

    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="ui-slider-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(data_dir=data_dir, database_url=db_url, admin_key=ADMIN_KEY)
        with live_server(db_url, data_dir) as base, httpx.Client(base_url=base, timeout=300) as c:
            pid, window = seed(c, admin)
            materialize(c, admin, settings, pid, window)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            for name, cache, mode, prefetch in (
                ("baseline: XYZ tiles, no render cache, no prefetch", "0", "tiles", False),
                ("ours: XYZ tiles, render cache, no prefetch", "1", "tiles", False),
                ("ours: XYZ tiles, render cache, prefetch", "1", "tiles", True),
                ("ours: one image per step, cache, prefetch", "1", "frames", True),
            ):
                os.environ["EARTHPLAT_TILE_CACHE"] = cache
                runs, warm = [], []
                for _ in range(args.rounds):
                    shutil.rmtree(data_dir / "cache", ignore_errors=True)
                    with live_server(db_url, data_dir) as base:
                        how = (browser, base, ADMIN_KEY, pid, window, mode, prefetch, args.dwell)
                        runs.append(measure(*how))
                        # a second labeller opening the same window (a new browser context)
                        warm.append(measure(*how))
                first = [ms for r in runs for ms in r["first"]]
                second = [ms for r in warm for ms in r["first"]]
                again = [ms for r in runs for ms in r["again"]]
                reqs = [n for r in runs for n in r["requests"]]
                rows.append(
                    {
                        "name": name,
                        "first_p50": statistics.median(first),
                        "first_max": max(first),
                        "warm_p50": statistics.median(second),
                        "again_p50": statistics.median(again),
                        "requests": statistics.median(reqs),
                        "steps": runs[0]["steps"],
                    }
                )
                print(rows[-1], flush=True)
            browser.close()
    lines = [
        f"Slider step in chromium 1280x800, {platform.node()}, {os.cpu_count()} CPUs, "
        f"{rows[0]['steps']} time steps, {args.rounds} page loads per row, "
        f"{args.dwell:g} s on each step (`--dwell`)",
        "",
        "| row | first showing p50 (ms) | first showing max (ms) "
        "| second labeller, first showing p50 (ms) | revisit p50 (ms) | requests per step |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['first_p50']:.0f} | {r['first_max']:.0f} | "
            f"{r['warm_p50']:.0f} | {r['again_p50']:.0f} | {r['requests']:.0f} |"
        )
    lines += ["", "Target: a step ready in under 300 ms."]
    text = "\n".join(lines)
    print(text)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
