"""API latency over loopback HTTP: annotation writes and XYZ tiles at 1, 10 and 50 concurrent
clients, against uvicorn serving ``create_app`` in a subprocess, on SQLite and PostgreSQL; and
the tile scenarios of the render cache, ours beside a named baseline in the same run.

    .venv/bin/python bench/api_latency.py --quick                 # a smoke run (a minute)
    .venv/bin/python bench/api_latency.py [--requests 200] [--backends sqlite,postgres]
        [--workers 4] [--tile-requests 2000] [--cold-tiles 400]  # the full run, idle machine

Annotation and ``tile`` operations: each client is a thread with its own keep-alive
``httpx.Client`` and its own labeller key. Operations (one uvicorn process):

- ``create``: ``POST /windows/{id}/annotations`` (a new row each time);
- ``update``: ``PATCH /annotations/{id}`` of the client's own annotation with the version it
  holds (If-Match), so every write succeeds: this measures the conditional UPDATE path;
- ``tile``: ``GET /tiles/{window}/s2/0/{z}/{x}/{y}.png`` of a real Sen1Floods11 window.

Tile scenarios (``--workers`` uvicorn worker processes, as a deployment runs them; clients are
``bench.http_load`` connections in one event loop, whose per-request cost is tens of
microseconds rather than an httpx thread's half millisecond and GIL wait; real
Sen1Floods11 windows, 256 px true/false colour, SWIR and gray tiles at zoom 18), each run twice
on the same data: **baseline** = the server with the render cache off (``EARTHPLAT_TILE_CACHE=0``:
every tile rendered, the behaviour before the cache) and **ours** = the cache on:

- ``cached@50``: 50 clients each requesting the 24 tiles of one view round-robin, in steady
  state: the tiles rendered, and each client's first pass over the view on its connection
  untimed (its worker has checked its access and holds the tiles in memory); the access
  re-checks every ``tile_access_ttl_s`` fall inside the timed part. p50/p95/p99 and tiles/s
  (the baseline, rendering every tile, makes at most 2000 requests and one untimed).
  Target: p99 < 50 ms and >= 500 tiles/s.
- ``cold@50``: 50 clients requesting tiles never rendered before (each once). Target p50 < 40 ms.
- ``cold, one client``: one client asking for never-rendered tiles one after another (what a
  tile's render costs when the server is not queueing 50 of them on 2 cores).
- ``304@50``: as ``cached@50`` with ``If-None-Match`` (what a browser revalidating sends).
- ``slider cold`` / ``slider cached``: one client asks for the 24 distinct tiles of one time
  step at once over 6 connections (a browser's per-host limit); time until all are in.

Prints the tables and writes ``bench/results/api_latency.md`` (``--quick``: ``..._quick.md``).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
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
def server(db_url: str, data_dir: Path, *, workers: int = 1, env_extra: dict | None = None):
    """uvicorn on a free loopback port; ``workers`` > 1 runs that many processes (the database
    must be migrated already: they start with ``EARTHPLAT_MIGRATE=0``)."""
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
        **(env_extra or {}),
    )
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host"]
    cmd += ["127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
        env["EARTHPLAT_MIGRATE"] = "0"
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
    from shapely.geometry import mapping, shape

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
            json={  # a window per client: a window's first writer claims it (others get 423)
                "bbox": [-0.79, 38.07, -0.73, 38.13],
                "start": "2019-09-10",
                "end": "2019-09-25",
                "size": 64,
            },
        )
        r.raise_for_status()
        made = r.json()["windows"]
        assert len(made) >= clients, f"{len(made)} windows for {clients} clients"
        wids = [w["id"] for w in made[:clients]]
        points = [mapping(shape(w["geometry"]).centroid) for w in made[:clients]]
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
    tile, tile_windows = seed_tiles(
        base, db_url, pid, project_dir, session_factory=make_session_factory(engine)
    )
    engine.dispose()
    return {
        "project": pid,
        "windows": wids,
        "points": points,
        "keys": keys,
        "tile": tile,
        "tiles": tile_windows,
    }


def seed_tiles(base: str, db_url: str, pid: int, project_dir: Path, *, session_factory):
    """Ingest the real Sen1Floods11 chip as a dataset of the project; returns a tile URL and
    ``[(window id, WGS84 bounds)]`` of the windows whose imagery is fully valid."""
    try:
        import api.routes.tiles  # noqa: F401
    except ModuleNotFoundError:
        return None, []
    import morecantile

    from earthplat.data.layer import read_layer_arrays
    from earthplat.eval.recipes import ingest_sen1floods11
    from labeling.models import Project
    from labeling.services import windows as wsvc

    root = SHARED / "real" / "sen1floods11_spain"
    if not root.is_dir():
        return None, []
    path = project_dir / "datasets" / "floods"
    ds, windows = ingest_sen1floods11(root, path, size=128)
    full = [w for w in windows if read_layer_arrays(ds, w, "s2").valid.all()]
    with session_factory() as session:
        project = session.get(Project, pid)
        record = wsvc.get_dataset(session, project_id=pid, name="floods", project_dir=project_dir)
        chosen = windows[:1] + [w for w in full if w.name != windows[0].name]
        rows, _ = wsvc.add_windows(
            session, project=project, dataset=record, windows=chosen, skip_existing=True
        )
        ids = {r.name: r.id for r in rows}
    centre = windows[0].geometry_wgs84().centroid
    t = morecantile.tms.get("WebMercatorQuad").tile(centre.x, centre.y, 14)
    url = f"/api/v1/tiles/{ids[windows[0].name]}/s2/0/{t.z}/{t.x}/{t.y}.png?preset=true_color"
    return url, [(ids[w.name], w.geometry_wgs84().bounds) for w in full]


def run_level(base: str, setup: dict, op: str, clients: int, total: int) -> dict:
    per_client = max(1, total // clients)
    latencies: list[float] = []
    errors = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def worker(i: int) -> None:
        headers = {"Authorization": f"Bearer {setup['keys'][i]}"}
        wid, point = setup["windows"][i], setup["points"][i]
        with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
            mine = None
            if op == "update":
                r = c.post(
                    f"/api/v1/windows/{wid}/annotations",
                    json={"geometry": point, "class_value": 1},
                )
                mine = r.json()
            own: list[float] = []
            barrier.wait()
            for k in range(per_client):
                t0 = time.perf_counter()
                if op == "create":
                    r = c.post(
                        f"/api/v1/windows/{wid}/annotations",
                        json={"geometry": point, "class_value": k % 2},
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


# --- tile scenarios: ours (render cache) beside the baseline (cache off) ------------------------
TILE_ZOOM = 18
PRESETS = ("true_color", "false_color", "swir", "gray")
VIEW = 24
"""Tiles of one view of the map (a slider step)."""
COLD_ONE = 40
"""Never-rendered tiles one client asks for one after another (a tile's own render time)."""
BROWSER_CONNECTIONS = 6
"""A browser's HTTP/1.1 connections per host."""


def tile_pool(windows: list) -> list[str]:
    """Every distinct tile URL of the windows' interiors (zoom 18, each preset)."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    urls = []
    for preset in PRESETS:
        for wid, (w, s, e, n) in windows:
            inset = 0.15 * (e - w)  # tiles well inside the window: real pixels, not borders
            for t in tms.tiles(w + inset, s + inset, e - inset, n - inset, [TILE_ZOOM]):
                urls.append(f"/api/v1/tiles/{wid}/s2/0/{t.z}/{t.x}/{t.y}.png?preset={preset}")
    return urls


def fetch_all(
    base: str,
    keys: list[str],
    urls_per_client: list[list[str]],
    etags: dict | None = None,
    warmup: int = 0,
) -> dict:
    """Each client (a connection of ``bench.http_load``) fetches its URLs in order (with
    ``If-None-Match: etags[url]`` when given), the first ``warmup`` of them untimed;
    latencies and throughput."""
    from bench.http_load import fetch

    clients = []
    for i, urls in enumerate(urls_per_client):
        auth = {"Authorization": f"Bearer {keys[i % len(keys)]}"}
        reqs = [(u, {"If-None-Match": etags[u]} if etags else {}) for u in urls]
        clients.append((auth, reqs))
    return fetch(base, clients, warmup=warmup).summary()


def slider_step(base: str, key: str, urls: list[str]) -> float:
    """Seconds until one client has all ``urls`` (at most ``BROWSER_CONNECTIONS`` at once)."""
    from bench.http_load import fetch_shared

    load = fetch_shared(base, {"Authorization": f"Bearer {key}"}, urls, BROWSER_CONNECTIONS)
    assert all(s == 200 for s in load.statuses), load.statuses
    return load.wall_s


def run_tiles(url: str, data_dir: Path, setup: dict, args) -> list[dict]:
    """The tile scenarios for baseline and ours on one database; rows for the table."""
    pool = tile_pool(setup["tiles"])
    random.Random(0).shuffle(pool)
    view, pool = pool[:VIEW], pool[VIEW:]
    need = 2 * (args.cold_tiles + COLD_ONE + 2 * VIEW)
    if len(pool) < need:
        raise RuntimeError(f"only {len(pool)} distinct tiles; --cold-tiles needs {need}")
    keys, clients = setup["keys"], 50
    per_client = max(1, args.tile_requests // clients)
    rows = []
    for name, cache in (("baseline (cache off)", "0"), ("ours (render cache)", "1")):
        env = {"EARTHPLAT_TILE_CACHE": cache}
        with server(url, data_dir, workers=args.workers, env_extra=env) as base:
            cold, pool = pool[: args.cold_tiles], pool[args.cold_tiles :]
            cold_one, pool = pool[:COLD_ONE], pool[COLD_ONE:]
            slider_cold, pool = pool[:VIEW], pool[VIEW:]
            result = {"config": name}
            result["cold_one"] = fetch_all(base, keys[:1], [cold_one])
            result["slider_cold_s"] = slider_step(base, keys[0], slider_cold)
            result["cold"] = fetch_all(base, keys, [cold[i::clients] for i in range(clients)])
            slider_step(base, keys[0], view)  # warm the view (ours: now cached)
            result["slider_cached_s"] = slider_step(base, keys[0], view)
            # the baseline renders every request: fewer of them, or it runs for minutes
            n = per_client if cache == "1" else max(1, min(per_client, 2000 // clients))
            warm = VIEW if cache == "1" else 1
            rotation = [[view[(i + k) % VIEW] for k in range(warm + n)] for i in range(clients)]
            # steady state: each client's first pass over the view on its connection is untimed
            # (its worker checks its access and has the tiles in memory; the re-checks every
            # tile_access_ttl_s fall in the timed part)
            result["cached"] = fetch_all(base, keys, rotation, warmup=warm)
            with httpx.Client(base_url=base, headers=ADMIN, timeout=60) as c:
                tags = {u: c.get(u).headers.get("etag") for u in view}
            result["not_modified"] = fetch_all(base, keys, rotation, etags=tags, warmup=warm)
            rows.append(result)
            print(
                f"  {name:22s} cached@50 p50={result['cached']['p50_ms']:.1f} "
                f"p99={result['cached']['p99_ms']:.1f} ms {result['cached']['rps']:.0f}/s; "
                f"cold@50 p50={result['cold']['p50_ms']:.1f} ms; slider cold "
                f"{result['slider_cold_s']:.2f} s cached {result['slider_cached_s']:.2f} s",
                flush=True,
            )
    return rows


def tile_table(backend: str, rows: list[dict], workers: int) -> list[str]:
    out = [
        f"**{backend}**, {workers} uvicorn worker process(es), 50 clients:",
        "",
        "| configuration | cached p50 / p95 / p99 (ms) | cached tiles/s | 304 p50 / p99 (ms) "
        "| cold p50 / p99 (ms) | cold tiles/s | cold, one client p50 (ms) "
        "| slider step cold (s) | slider step cached (s) | errors |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        c, k, nm = r["cached"], r["cold"], r["not_modified"]
        out.append(
            f"| {r['config']} | {c['p50_ms']:.1f} / {c['p95_ms']:.1f} / {c['p99_ms']:.1f} | "
            f"{c['rps']:.0f} | {nm['p50_ms']:.1f} / {nm['p99_ms']:.1f} | "
            f"{k['p50_ms']:.1f} / {k['p99_ms']:.1f} | {k['rps']:.0f} | "
            f"{r['cold_one']['p50_ms']:.1f} | "
            f"{r['slider_cold_s']:.2f} | {r['slider_cached_s']:.2f} | "
            f"{c['errors'] + k['errors'] + nm['errors'] + r['cold_one']['errors']} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per op and level")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--out", default=None, help="default bench/results/api_latency.md")
    parser.add_argument("--workers", type=int, default=4, help="uvicorn workers (tile scenarios)")
    parser.add_argument("--tile-requests", type=int, default=10000, help="cached@50 requests")
    parser.add_argument("--cold-tiles", type=int, default=400, help="cold@50 distinct tiles")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.tile_requests, args.cold_tiles = 20, 200, 60
        args.workers = min(args.workers, 2)
    name = "api_latency_quick.md" if args.quick else "api_latency.md"
    args.out = args.out or str(REPO / "bench" / "results" / name)
    rows, tile_tables = [], []
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp, database(backend, Path(tmp)) as url:
            data_dir = Path(tmp) / "data"
            data_dir.mkdir()
            with server(url, data_dir) as base:
                setup = seed(base, url, max(LEVELS))
                ops = ["create", "update"] + (["tile"] if setup["tile"] else [])
                for op in ops:
                    for clients in LEVELS if not args.quick else (1, 10):
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
            if setup["tiles"]:
                print(f"{backend}: tile scenarios, {args.workers} workers", flush=True)
                tile_rows = run_tiles(url, data_dir, setup, args)
                tile_tables += [*tile_table(backend, tile_rows, args.workers), ""]
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
            f"`bench/api_latency.py {'--quick' if args.quick else ''} --requests "
            f"{args.requests}`: one uvicorn process serving "
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
            "## Tiles: the render cache (ours) beside the cache turned off (baseline)",
            "",
            f"`--workers {args.workers} --tile-requests {args.tile_requests} --cold-tiles "
            f"{args.cold_tiles}`. 256 px zoom-{TILE_ZOOM} tiles of fully valid real Sen1Floods11 "
            "windows (4 presets). cached = 50 clients cycling through the 24 tiles of one view "
            "(rendered; each client's first pass over the view on its connection untimed; the "
            "baseline makes at most 2000); 304 = the same with If-None-Match; cold = tiles never "
            "rendered before; "
            f"slider step = one client, 24 distinct tiles over {BROWSER_CONNECTIONS} "
            "connections, time until all are in. Tile clients: `bench.http_load` (one event "
            "loop, raw keep-alive HTTP/1.1). Targets: cached p99 < 50 ms and >= 500 "
            "tiles/s, cold p50 < 40 ms.",
            "",
            *tile_tables,
        ]
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print("\n".join(table))
    print("\n".join(tile_tables))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
