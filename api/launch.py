"""``make run``: the platform on embedded defaults, with a demo project.

One command starts what a single machine needs: the API on http://127.0.0.1:8000 (SQLite file and
files under ``EARTHPLAT_DATA_DIR``, default ``./earthplat-data``), one job worker process, and a
demo project whose imagery comes from

- a folder, ``EARTHPLAT_DEMO_DATA`` (default ``../shared/data/real`` when it exists): the
  Sen1Floods11 chip there (Sentinel-2, Sentinel-1 and the hand-labelled water mask) is uploaded,
  windows are laid over it and a materialize job is queued; or
- a STAC API, ``EARTHPLAT_DEMO_STAC`` (with ``EARTHPLAT_DEMO_COLLECTION`` and
  ``EARTHPLAT_DEMO_BBOX`` = ``minlon,minlat,maxlon,maxlat``): the source is registered and
  materialized for windows over the bbox.

The demo is made through the platform's own HTTP API, like any client would, and only once
(a project named ``demo`` is reused). The admin key is ``EARTHPLAT_ADMIN_KEY`` or a key kept in
``DATA_DIR/admin.key`` (created at the first start, mode 0600). Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

DEMO = "demo"
CHIP = "sen1floods11_spain"
UPLOADS = (  # layer name, file, modality, materialize options
    ("s2", "Spain_7370579_S2Hand.tif", "sentinel2_l1c", {"datetime": "2019-09-18"}),
    ("s1", "Spain_7370579_S1Hand.tif", "sentinel1", {"datetime": "2019-09-17"}),
    ("label", "Spain_7370579_LabelHand.tif", "label", {"nodata": -1}),
)
WATER_CLASSES = [
    {"value": 0, "label": "not water", "color": "#c8b98a"},
    {"value": 1, "label": "water", "color": "#1f6fd1"},
]


def admin_key(data_dir: Path) -> str:
    """``EARTHPLAT_ADMIN_KEY``, else the key kept in ``DATA_DIR/admin.key`` (made once)."""
    key = os.environ.get("EARTHPLAT_ADMIN_KEY")
    if key:
        return key
    path = data_dir / "admin.key"
    if path.is_file():
        return path.read_text().strip()
    key = "ep_" + secrets.token_urlsafe(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key


def default_demo_data() -> Path | None:
    env = os.environ.get("EARTHPLAT_DEMO_DATA")
    if env:
        return Path(env)
    guess = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
    return guess if guess.is_dir() else None


def wait_healthy(base: str, timeout: float = 120.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the API did not answer at {base} within {timeout:.0f} s")


def seed_demo(base: str, key: str) -> dict:
    """Create (or find) the demo project through the HTTP API; returns what to print."""
    import httpx

    client = httpx.Client(
        base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=120.0
    )

    def ok(r: httpx.Response) -> dict | list:
        if r.status_code >= 400:
            raise RuntimeError(f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text}")
        return r.json()

    found = [p for p in ok(client.get("/projects")) if p["name"] == DEMO]
    if found:
        return {"project": found[0], "created": False}
    stac = os.environ.get("EARTHPLAT_DEMO_STAC")
    folder = default_demo_data()
    if not stac and (folder is None or not (folder / CHIP).is_dir()):
        return {"project": None, "reason": "set EARTHPLAT_DEMO_DATA or EARTHPLAT_DEMO_STAC"}
    project = ok(
        client.post(
            "/projects",
            json={
                "name": DEMO,
                "description": "Flood mapping demo: label water, fine-tune, predict.",
                "task_type": "segmentation",
                "classes": WATER_CLASSES,
                "sensors": ["sentinel2_l1c", "sentinel1"],
                "start": "2019-09-10T00:00:00Z",
                "end": "2019-09-25T00:00:00Z",
            },
        )
    )
    pid = project["id"]
    if stac:
        bbox = [float(v) for v in os.environ["EARTHPLAT_DEMO_BBOX"].split(",")]
        collection = os.environ.get("EARTHPLAT_DEMO_COLLECTION", "sentinel-2-l2a")
        ok(
            client.post(
                f"/projects/{pid}/sources/stac",
                json={
                    "name": "s2",
                    "url": stac,
                    "collection": collection,
                    "modality": os.environ.get("EARTHPLAT_DEMO_MODALITY", "sentinel2_l2a"),
                },
            )
        )
        layers = [{"source": "s2", "layer": "s2", "period": "30d"}]
    else:
        import rasterio
        from rasterio.warp import transform_bounds

        root = folder / CHIP
        with rasterio.open(root / UPLOADS[0][1]) as src:
            bbox = list(transform_bounds(src.crs, "EPSG:4326", *src.bounds))
        for name, file, modality, _ in UPLOADS:
            with (root / file).open("rb") as f:
                ok(
                    client.post(
                        f"/projects/{pid}/layers/upload",
                        files={"file": (file, f, "image/tiff")},
                        data={"name": name, "modality": modality},
                    )
                )
        layers = [
            {"source": name, "layer": name, "period": "15d", **opts} for name, _, _, opts in UPLOADS
        ]
    created = ok(
        client.post(
            f"/projects/{pid}/windows/aoi",
            json={"bbox": bbox, "size": 64, "start": project["start"], "end": project["end"]},
        )
    )
    job = ok(
        client.post(
            f"/projects/{pid}/jobs",
            json={"kind": "materialize", "payload": {"layers": layers, "ignore_errors": True}},
        )
    )
    return {"project": project, "created": True, "windows": created["created"], "job": job["id"]}


def banner(base: str, key: str, data_dir: Path, demo: dict) -> str:
    lines = [
        "",
        f"earthplat platform on {base}",
        f"  labelling UI:        {base}/   (sign in with the admin key below)",
        f"  API docs (OpenAPI):  {base}/docs",
        f"  health / metrics:    {base}/api/v1/health   {base}/metrics",
        f"  admin API key:       {key}   (header: Authorization: Bearer <key>)",
        f"  data directory:      {data_dir}   (SQLite database: earthplat.db)",
        "  worker:              1 process (python -m api.jobs.worker)",
    ]
    project = demo.get("project")
    if project:
        pid = project["id"]
        lines += [
            f"  demo project:        {base}/api/v1/projects/{pid}"
            + (
                f"  ({demo['windows']} windows; materialize job {demo['job']})"
                if demo.get("created")
                else ""
            ),
            f"  its windows:         {base}/api/v1/projects/{pid}/windows",
            f"  jobs:                {base}/api/v1/projects/{pid}/jobs",
            f"  tiles of a window:   {base}/api/v1/tiles/WINDOW_ID",
        ]
    else:
        lines.append(f"  no demo project: {demo.get('reason')}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description="Run the earthplat platform (API + 1 worker).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-demo", action="store_true", help="do not create the demo project")
    args = parser.parse_args(argv)

    from api.settings import Settings

    data_dir = Path(Settings().data_dir).expanduser().resolve()
    os.environ["EARTHPLAT_DATA_DIR"] = str(data_dir)
    key = admin_key(data_dir)
    os.environ["EARTHPLAT_ADMIN_KEY"] = key
    base = f"http://{args.host}:{args.port}"

    from api.database import upgrade

    upgrade(Settings().resolved_database_url)  # once, before the server and the worker start
    worker = subprocess.Popen([sys.executable, "-m", "api.jobs.worker"], env=os.environ.copy())

    def stop_worker(*_):
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()

    def announce() -> None:
        try:
            wait_healthy(base)
            demo = (
                {"project": None, "reason": "--no-demo"} if args.no_demo else seed_demo(base, key)
            )
        except Exception as e:  # the server keeps running; say what went wrong
            demo = {"project": None, "reason": f"demo set-up failed: {e}"}
        print(banner(base, key, data_dir, demo), flush=True)

    threading.Thread(target=announce, daemon=True).start()
    try:
        uvicorn.run("api.main:create_app", factory=True, host=args.host, port=args.port)
    finally:
        stop_worker()


if __name__ == "__main__":
    main()
