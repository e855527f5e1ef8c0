"""``make run``'s launcher: API + one worker + the demo project, as separate real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import MISSING, REPO

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_launch_serves_the_demo_project(tmp_path: Path, shared_data: Path):
    import httpx

    from labeling.tiles import tile_for_lonlat

    real = shared_data / "real"
    if not (real / "sen1floods11_spain").is_dir():
        pytest.skip(f"{MISSING} {real / 'sen1floods11_spain'}")
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EARTHPLAT_") or k == "EARTHPLAT_CACHE_DIR"
    }
    env.update(EARTHPLAT_DATA_DIR=str(tmp_path / "data"), EARTHPLAT_DEMO_DATA=str(real))
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.launch", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    out: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            if "tiles of a window:" in line or "no demo project" in line:
                break
        text = "".join(out)
        assert f"earthplat platform on http://127.0.0.1:{port}" in text, text
        assert "demo project:" in text, text
        key = (tmp_path / "data" / "admin.key").read_text().strip()
        assert key in text
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
        (project,) = [p for p in client.get("/projects").json() if p["name"] == "demo"]
        jobs = client.get(f"/projects/{project['id']}/jobs").json()
        assert [j["kind"] for j in jobs] == ["materialize"]
        while time.monotonic() < deadline:  # the worker process runs it
            job = client.get(f"/jobs/{jobs[0]['id']}").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(1)
        assert job["status"] == "succeeded", job
        # a materialised window serves an imagery tile
        layers = client.get(f"/projects/{project['id']}/layers").json()
        window_id = next(x["window_id"] for x in layers if x["kind"] == "materialized")
        info = client.get(f"/tiles/{window_id}").json()
        lon = (info["bounds"][0] + info["bounds"][2]) / 2
        lat = (info["bounds"][1] + info["bounds"][3]) / 2
        z, x, y = tile_for_lonlat(lon, lat, 14)
        s2 = next(layer for layer in info["layers"] if layer["name"] == "s2")
        t = next(i for i in range(len(s2["periods"])) if i not in s2["missing_periods"])
        r = client.get(f"/tiles/{window_id}/s2/{t}/{z}/{x}/{y}.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        # the browser UI is served at / (built by `make web`, which `make setup` runs)
        from api.web import web_dist

        ui = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
        if (web_dist() / "index.html").is_file():
            assert ui.status_code == 200 and "<html" in ui.text.lower(), ui.text[:200]
        else:
            assert ui.status_code == 503 and "make web" in ui.json()["fix"]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode is not None


def test_earthplat_worker_command_runs_queued_jobs(tmp_path: Path):
    """``earthplat worker --once`` is the job worker: it drains the queue and exits."""
    from api.database import make_engine, make_session_factory, sqlite_url_for, upgrade
    from api.jobs import queue

    data = tmp_path / "data"
    data.mkdir()
    url = sqlite_url_for(data)
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        job_id = queue.enqueue(s, kind="steps", payload={"steps": 2, "sleep_s": 0.01}).id
    env = {k: v for k, v in os.environ.items() if not k.startswith("EARTHPLAT_")}
    env["EARTHPLAT_DATA_DIR"] = str(data)
    script = Path(sys.executable).parent / "earthplat"
    out = subprocess.run(
        [str(script), "worker", "--once", "--poll-interval", "0.1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    with make_session_factory(engine)() as s:
        job = queue.get_job(s, job_id=job_id)
        assert job.status == "succeeded" and job.progress == 1.0
    engine.dispose()
