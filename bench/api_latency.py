"""API latency over loopback HTTP: annotation writes (and XYZ tiles) at 1, 10 and 50 concurrent
clients, against uvicorn (one process, ``create_app``) in a subprocess, on SQLite and PostgreSQL.

    .venv/bin/python bench/api_latency.py [--requests 200] [--backends sqlite,postgres]

Each client is a thread with its own keep-alive ``httpx.Client`` and its own labeller key.
Operations:

- ``create``: ``POST /windows/{id}/annotations`` (a new row each time);
- ``update``: ``PATCH /annotations/{id}`` of the client's own annotation with the version it
  holds (If-Match), so every write succeeds: this measures the conditional UPDATE path;
- ``tile``: ``GET /tiles/{window}/s2/0/{z}/{x}/{y}.png`` of a real Sen1Floods11 window
  (when ``api.routes.tiles`` exists).

Prints a table (p50/p99 in ms, requests/s) and writes ``bench/results/api_latency.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("EARTHPLAT_SHARED_DATA", REPO.parent / "shared" / "data"))
ADMIN_KEY = "ep_bench_admin_key_0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
LEVELS = (1, 10, 50)
POINT = {"type": "Point", "coordinates": [-0.76, 38.1]}


@contextmanager
def database(backend: str, tmp: Path):
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    conn = psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True, connect_timeout=3
    )
    conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


@contextmanager
def server(db_url: str, data_dir: Path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        EARTHPLAT_DATABASE_URL=db_url,
        EARTHPLAT_DATA_DIR=str(data_dir),
        EARTHPLAT_ADMIN_KEY=ADMIN_KEY,
        PYTHONPATH=str(REPO),
    )
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host"]
    cmd += ["127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError("uvicorn did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(20)


def seed(base: str, db_url: str, clients: int) -> dict:
    """A project over the Sen1Floods11 chip, its windows (with real layers when the tiles API
    exists) and ``clients`` labellers with one annotation each."""
    from shapely.geometry import shape

    from api import auth
    from api.database import make_engine, make_session_factory
    from labeling.services.projects import set_member

    classes = [{"value": 0, "label": "land"}, {"value": 1, "label": "water"}]
    with httpx.Client(base_url=base, headers=ADMIN, timeout=120) as c:
        pid = c.post(
            "/api/v1/projects", json={"name": "bench", "task_type": "detection", "classes": classes}
        ).json()["id"]
        r = c.post(
            f"/api/v1/projects/{pid}/windows/aoi",
            json={
                "bbox": [-0.7601, 38.0999, -0.7599, 38.1001],
                "start": "2019-09-10",
                "end": "2019-09-25",
                "size": 64,
            },
        )
        r.raise_for_status()
        wid = r.json()["windows"][0]["id"]
        centre = shape(r.json()["windows"][0]["geometry"]).centroid
        POINT["coordinates"] = [centre.x, centre.y]
        project_dir = Path(r.json()["dataset"]["path"]).parent.parent
    engine = make_engine(db_url)
    keys = []
    with make_session_factory(engine)() as session:
        users = [auth.create_user(session, name=f"bench{i}") for i in range(clients)]
        for user in users:
            keys.append(auth.create_key(session, user_id=user.id)[1])
        session.commit()
        for user in users:
            set_member(session, project_id=pid, user_id=user.id, role="labeler")
    tile = seed_tiles(base, db_url, pid, project_dir, session_factory=make_session_factory(engine))
    engine.dispose()
    return {"project": pid, "window": wid, "keys": keys, "tile": tile}


def seed_tiles(base: str, db_url: str, pid: int, project_dir: Path, *, session_factory):
    """Ingest the real Sen1Floods11 chip as a dataset of the project; returns a tile URL."""
    try:
        import api.routes.tiles  # noqa: F401
    except ModuleNotFoundError:
        return None
    import morecantile

    from earthplat.eval.recipes import ingest_sen1floods11
    from labeling.models import Project
    from labeling.services import windows as wsvc

    root = SHARED / "real" / "sen1floods11_spain"
    if not root.is_dir():
        return None
    path = project_dir / "datasets" / "floods"
    _, windows = ingest_sen1floods11(root, path, size=128)
    with session_factory() as session:
        project = session.get(Project, pid)
        record = wsvc.get_dataset(session, project_id=pid, name="floods", project_dir=project_dir)
        rows, _ = wsvc.add_windows(
            session, project=project, dataset=record, windows=windows[:1], skip_existing=True
        )
        window_id = rows[0].id
    centre = windows[0].geometry_wgs84().centroid
    t = morecantile.tms.get("WebMercatorQuad").tile(centre.x, centre.y, 14)
    return f"/api/v1/tiles/{window_id}/s2/0/{t.z}/{t.x}/{t.y}.png?preset=true_color"


def run_level(base: str, setup: dict, op: str, clients: int, total: int) -> dict:
    per_client = max(1, total // clients)
    latencies: list[float] = []
    errors = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def worker(i: int) -> None:
        headers = {"Authorization": f"Bearer {setup['keys'][i]}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
            mine = None
            if op == "update":
                r = c.post(
                    f"/api/v1/windows/{setup['window']}/annotations",
                    json={"geometry": POINT, "class_value": 1},
                )
                mine = r.json()
            own: list[float] = []
            barrier.wait()
            for k in range(per_client):
                t0 = time.perf_counter()
                if op == "create":
                    r = c.post(
                        f"/api/v1/windows/{setup['window']}/annotations",
                        json={"geometry": POINT, "class_value": k % 2},
                    )
                elif op == "update":
                    r = c.patch(
                        f"/api/v1/annotations/{mine['id']}",
                        json={"class_value": k % 2},
                        headers={"If-Match": f'"{mine["version"]}"'},
                    )
                    if r.status_code == 200:
                        mine = r.json()
                else:
                    r = c.get(setup["tile"])
                own.append(time.perf_counter() - t0)
                if r.status_code >= 300:
                    errors.append(f"{op} {r.status_code} {r.text[:200]}")
            with lock:
                latencies.extend(own)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = sorted(latencies)
    return {
        "op": op,
        "clients": clients,
        "n": len(lat),
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "rps": len(lat) / wall,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per op and level")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "api_latency.md"))
    args = parser.parse_args()
    rows = []
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp)) as url:
            data_dir = Path(tmp) / "data"
            data_dir.mkdir()
            with server(url, data_dir) as base:
                setup = seed(base, url, max(LEVELS))
                ops = ["create", "update"] + (["tile"] if setup["tile"] else [])
                for op in ops:
                    for clients in LEVELS:
                        row = run_level(base, setup, op, clients, args.requests)
                        row["backend"] = backend
                        rows.append(row)
                        print(
                            f"{backend:8s} {op:7s} c={clients:3d} n={row['n']:4d} "
                            f"p50={row['p50_ms']:7.1f} ms p99={row['p99_ms']:7.1f} ms "
                            f"{row['rps']:7.1f} req/s errors={row['errors']} "
                            f"{row['first_error']}",
                            flush=True,
                        )
    table = [
        "| backend | operation | clients | requests | p50 (ms) | p99 (ms) | requests/s | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        table.append(
            f"| {r['backend']} | {r['op']} | {r['clients']} | {r['n']} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['rps']:.1f} | {r['errors']} |"
        )
    text = "\n".join(
        [
            "# API latency over loopback HTTP",
            "",
            f"`bench/api_latency.py --requests {args.requests}`: one uvicorn process serving "
            "`api.main:create_app` in a subprocess; clients are threads with keep-alive httpx "
            "clients, each with its own labeller key. `create` = POST an annotation, `update` = "
            "PATCH the client's own annotation with If-Match (conditional UPDATE), `tile` = "
            "GET a 256 px PNG of a real Sen1Floods11 S2 window (true colour).",
            "",
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs shared with other work "
            f"(load average at the end {os.getloadavg()[0]:.1f}); Python "
            f"{platform.python_version()}. Client threads run on the same cores as the server, "
            "so these are lower bounds on what a dedicated server does.",
            "",
            *table,
            "",
        ]
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print("\n".join(table))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
