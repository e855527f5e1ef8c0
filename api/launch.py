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
(a project named ``demo`` is reused). Once its materialize job has succeeded the launcher prints
one line, ``demo ready: BASE/#/projects/ID`` (the project's page in the UI); if the job fails it
prints the job's error and where to read its logs.

The admin key is ``EARTHPLAT_ADMIN_KEY`` or a key kept in ``DATA_DIR/admin.key`` (created at the
first start, mode 0600). The terminal shows it in full once: when it was just created and stdout
is a terminal; otherwise the banner says where the file is, so the key never lands in a log that
captures the output. The launcher registers it with the database itself, so neither child
process gets it in its environment.

Processes: the API (``python -m api.main``) and the worker (``python -m api.jobs.worker``) are
children in their own process group. SIGTERM (``docker stop``, systemd), SIGINT (Ctrl-C) or
SIGHUP to the launcher is forwarded to both as SIGTERM: the API finishes its requests, the worker
hands its running job back to the queue; whatever is still alive after ``--stop-timeout`` seconds
is killed. On Linux each child also gets ``PR_SET_PDEATHSIG`` = SIGTERM, so a launcher killed
outright (SIGKILL, OOM) takes them down too. If either child exits by itself, the launcher stops
the other and exits with its status.
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
from typing import NamedTuple

from api.settings import default_demo_data

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


class AdminKey(NamedTuple):
    value: str
    origin: str
    """``"env"`` (``EARTHPLAT_ADMIN_KEY``), ``"file"`` (read from ``path``) or ``"created"``
    (just made and written to ``path``)."""
    path: Path


def admin_key(data_dir: Path) -> AdminKey:
    """``EARTHPLAT_ADMIN_KEY``, else the key kept in ``DATA_DIR/admin.key`` (made once, 0600)."""
    path = data_dir / "admin.key"
    key = os.environ.get("EARTHPLAT_ADMIN_KEY")
    if key:
        return AdminKey(key, "env", path)
    if path.is_file():
        return AdminKey(path.read_text().strip(), "file", path)
    key = "ep_" + secrets.token_urlsafe(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return AdminKey(key, "created", path)


def wait_healthy(base: str, timeout: float = 120.0, alive=lambda: True) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
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
        pid = found[0]["id"]
        jobs = ok(client.get(f"/projects/{pid}/jobs", params={"kind": "materialize", "limit": 1}))
        return {"project": found[0], "created": False, "job": jobs[0]["id"] if jobs else None}
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


TERMINAL = ("succeeded", "failed", "cancelled")


def wait_for_job(base: str, key: str, job_id: int, poll_s: float = 2.0) -> dict:
    """Poll ``GET /jobs/ID`` until the job has ended; returns it."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"}
    while True:
        try:
            r = httpx.get(f"{base}/api/v1/jobs/{job_id}", headers=headers, timeout=30.0)
            if r.status_code == 200 and r.json()["status"] in TERMINAL:
                return r.json()
        except httpx.HTTPError:
            pass  # the API is busy or restarting: ask again
        time.sleep(poll_s)


def demo_outcome(base: str, key: AdminKey, demo: dict, job: dict | None) -> str:
    """``demo ready: BASE/#/projects/ID`` once its materialize job succeeded, else what failed
    and where to look."""
    pid = demo["project"]["id"]
    if job is None or job["status"] == "succeeded":
        return f"demo ready: {base}/#/projects/{pid}\n"
    jid = job["id"]
    return (
        f"demo not ready: materialize job {jid} {job['status']}: {job.get('message')}\n"
        f'  its logs:  curl -H "Authorization: Bearer $(cat {key.path})" '
        f"{base}/api/v1/jobs/{jid}/logs\n"
        f"  in the UI: {base}/#/projects/{pid}/jobs\n"
    )


def key_line(key: AdminKey, show: bool) -> str:
    """The banner's key line: the key itself only when ``show`` (just created, on a terminal)."""
    if show:
        return f"{key.value}   (new: shown this once; kept in {key.path}, mode 0600)"
    if key.origin == "env":
        return "from EARTHPLAT_ADMIN_KEY"
    return f"in {key.path}   (cat it; mode 0600)"


def banner(base: str, key: AdminKey, data_dir: Path, demo: dict, show_key: bool = False) -> str:
    lines = [
        "",
        f"earthplat platform on {base}",
        f"  labelling UI:        {base}/   (sign in with the admin key)",
        f"  API docs (OpenAPI):  {base}/docs",
        f"  health / metrics:    {base}/api/v1/health   {base}/metrics",
        f"  admin API key:       {key_line(key, show_key)}",
        "                       (header: Authorization: Bearer <key>)",
        f"  data directory:      {data_dir}   (SQLite database: earthplat.db)",
        "  worker:              1 process (python -m api.jobs.worker)",
    ]
    project = demo.get("project")
    if project:
        pid = project["id"]
        job = demo.get("job")
        lines += [
            f"  demo project:        {base}/api/v1/projects/{pid}"
            + (f"  ({demo['windows']} windows)" if demo.get("created") else ""),
            f"  its windows:         {base}/api/v1/projects/{pid}/windows",
            f"  jobs:                {base}/api/v1/projects/{pid}/jobs"
            + (f"   (materialize job {job}; 'demo ready' follows when done)" if job else ""),
            f"  tiles of a window:   {base}/api/v1/tiles/WINDOW_ID",
        ]
    else:
        lines.append(f"  no demo project: {demo.get('reason')}")
    return "\n".join(lines) + "\n"


# --- child processes ------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """A ``preexec_fn`` (Linux): the child gets SIGTERM when the launcher dies, even by SIGKILL.
    Linux sends it when the *thread* that forked exits, so children are spawned from the main
    thread, before any other thread starts (``preexec_fn`` is not safe with threads either)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the forked child
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the launcher died before prctl took effect
            os._exit(1)

    return preexec


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """A child in its own process group (a terminal's Ctrl-C reaches only the launcher, which
    forwards it once) that dies with the launcher."""
    return subprocess.Popen(
        args, env=env, stdin=subprocess.DEVNULL, process_group=0, preexec_fn=_die_with_parent()
    )


def stop_children(children: dict[str, subprocess.Popen], timeout: float) -> None:
    """SIGTERM to every child still running, wait up to ``timeout`` s for all, then SIGKILL."""
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for name, proc in children.items():
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"earthplat: {name} did not stop within {timeout:.0f} s; killing it", flush=True)
            proc.kill()
            proc.wait()


def register_admin(url: str, key: str) -> None:
    """Make sure the admin key logs in (what ``create_app`` would do with
    ``EARTHPLAT_ADMIN_KEY``), so the API process needs no key in its environment."""
    from api import auth
    from api.database import begin_write, import_models, make_engine, make_session_factory

    import_models()
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            begin_write(session)
            auth.bootstrap_admin(session, admin_key=key)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Run the earthplat platform (API + 1 worker).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-demo", action="store_true", help="do not create the demo project")
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=30.0,
        help="seconds the API and the worker get to stop before they are killed",
    )
    args = parser.parse_args(argv)

    from api.database import upgrade
    from api.settings import Settings
    from labeling.services.errors import PlatformError

    data_dir = Path(Settings().data_dir).expanduser().resolve()
    key = admin_key(data_dir)
    env = {k: v for k, v in os.environ.items() if k != "EARTHPLAT_ADMIN_KEY"}
    env["EARTHPLAT_DATA_DIR"] = str(data_dir)
    os.environ["EARTHPLAT_DATA_DIR"] = str(data_dir)
    url = Settings().resolved_database_url
    upgrade(url)  # once, before the server and the worker start
    try:
        register_admin(url, key.value)
    except PlatformError as e:
        print(f"earthplat: {e.detail}\n  fix: {e.fix}", file=sys.stderr, flush=True)
        return 2
    base = f"http://{args.host}:{args.port}"

    stop = threading.Event()
    stopped_by: list[int] = []
    children: dict[str, subprocess.Popen] = {}

    def on_signal(sig: int, _frame) -> None:
        stopped_by.append(sig)
        if stop.is_set():  # a second Ctrl-C while stopping: do not wait any longer
            for proc in children.values():
                proc.kill()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    py = sys.executable
    server = [py, "-m", "api.main", "--host", args.host, "--port", str(args.port)]
    children["API"] = spawn(server, env)
    children["worker"] = spawn([py, "-m", "api.jobs.worker"], env)

    def announce() -> None:
        api = children["API"]
        try:
            wait_healthy(base, alive=lambda: api.poll() is None and not stop.is_set())
            demo = (
                {"project": None, "reason": "--no-demo"}
                if args.no_demo
                else seed_demo(base, key.value)
            )
        except Exception as e:  # the server keeps running; say what went wrong
            demo = {"project": None, "reason": f"demo set-up failed: {e}"}
        if stop.is_set():
            return
        show = key.origin == "created" and sys.stdout.isatty()
        print(banner(base, key, data_dir, demo, show_key=show), flush=True)
        if demo.get("project"):
            job = wait_for_job(base, key.value, demo["job"]) if demo.get("job") else None
            if not stop.is_set():
                print(demo_outcome(base, key, demo, job), flush=True)

    threading.Thread(target=announce, name="announce", daemon=True).start()
    ended = None
    while not stop.wait(0.5):
        ended = next((n for n, p in children.items() if p.poll() is not None), None)
        if ended:
            code = children[ended].returncode
            print(f"earthplat: the {ended} exited with status {code}; stopping", flush=True)
            break
    stop.set()
    stop_children(children, args.stop_timeout)
    if stopped_by:
        print(f"earthplat: stopped ({signal.Signals(stopped_by[0]).name})", flush=True)
    if ended:  # a child that ended by itself is a failure, whatever its status
        return children[ended].returncode or 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
