"""``make run``'s launcher: API + one worker + the demo project, as separate real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import MISSING, REPO

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Launcher:
    """``python -m api.launch`` in a temp data dir, its output (stdout + stderr: the launcher's,
    the API's and the worker's) read by a thread."""

    def __init__(self, data_dir: Path, *args: str, **env: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("EARTHPLAT_") or k == "EARTHPLAT_CACHE_DIR"
        }
        environ.update(EARTHPLAT_DATA_DIR=str(data_dir), **env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.launch", "--port", str(self.port), *args],
            cwd=REPO,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, *needles: str, timeout: float = 240.0) -> str:
        """Wait until the output holds one of ``needles``; returns the output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(n in self.text for n in needles):
                return self.text
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.2)
        raise AssertionError(f"none of {needles} in the launcher's output:\n{self.text}")

    def client(self):
        import httpx

        key = (self.data_dir / "admin.key").read_text().strip()
        return httpx.Client(
            base_url=f"{self.base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=60
        )

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.reader.join(10)


def _children(pid: int) -> list[int]:
    """The pids of ``pid``'s descendants (psutil when installed, else /proc)."""
    try:
        import psutil
    except ImportError:
        parents = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(stat.parent.name)] = int(fields[1])
        found, todo = [], [pid]
        while todo:
            kids = [c for c, p in parents.items() if p == todo.pop()]
            found += kids
            todo += kids
        return found
    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return []
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


def _files_holding(root: Path, secret: str, skip: Path) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and p != skip and secret.encode() in p.read_bytes()
    ]


def test_launch_serves_the_demo_project(tmp_path: Path, shared_data: Path):
    from labeling.tiles import tile_for_lonlat

    real = shared_data / "real"
    if not (real / "sen1floods11_spain").is_dir():
        pytest.skip(f"{MISSING} {real / 'sen1floods11_spain'}")
    data = tmp_path / "data"
    launcher = Launcher(data, EARTHPLAT_DEMO_DATA=str(real))
    base = launcher.base
    try:
        text = launcher.wait_for("demo ready:", "demo not ready:", "no demo project")
        assert f"earthplat platform on {base}" in text, text
        assert "demo project:" in text, text
        key = (data / "admin.key").read_text().strip()
        assert (data / "admin.key").stat().st_mode & 0o777 == 0o600
        # output that is not a terminal (a log) never holds the key, only where it is kept
        assert key not in text and f"in {data / 'admin.key'}" in text, text
        client = launcher.client()
        (project,) = [p for p in client.get("/projects").json() if p["name"] == "demo"]
        pid = project["id"]
        # one line, a link to the project's page in the UI, once its job has succeeded
        assert f"demo ready: {base}/#/projects/{pid}\n" in text, text
        jobs = client.get(f"/projects/{pid}/jobs").json()
        assert [(j["kind"], j["status"]) for j in jobs] == [("materialize", "succeeded")], jobs
        # a materialised window serves an imagery tile
        layers = client.get(f"/projects/{pid}/layers").json()
        window_id = next(x["window_id"] for x in layers if x["kind"] == "materialized")
        info = client.get(f"/tiles/{window_id}").json()
        lon = (info["bounds"][0] + info["bounds"][2]) / 2
        lat = (info["bounds"][1] + info["bounds"][3]) / 2
        z, x, y = tile_for_lonlat(lon, lat, 14)
        s2 = next(layer for layer in info["layers"] if layer["name"] == "s2")
        t = next(i for i in range(len(s2["periods"])) if i not in s2["missing_periods"])
        r = client.get(f"/tiles/{window_id}/s2/{t}/{z}/{x}/{y}.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        # the browser UI is served at / and the API docs at /docs, both from `make web`'s build
        import httpx

        from api.web import web_dist

        ui = httpx.get(f"{base}/", timeout=30)
        docs = httpx.get(f"{base}/docs", timeout=30)
        if (web_dist() / "index.html").is_file():
            assert ui.status_code == 200 and "<html" in ui.text.lower(), ui.text[:200]
        else:
            assert ui.status_code == 503 and "make web" in ui.json()["fix"]
        if (web_dist() / "swagger" / "swagger-ui-bundle.js").is_file():
            assert docs.status_code == 200 and "/swagger/swagger-ui-bundle.js" in docs.text
        else:
            assert docs.status_code == 503 and "make web" in docs.json()["fix"]
        children = _children(launcher.proc.pid)
        assert len(children) == 2, children  # the API and the worker
    finally:
        launcher.stop(signal.SIGINT)  # Ctrl-C
    assert launcher.proc.returncode == 0, launcher.text
    assert not _wait_gone(children, 10)
    key_files = _files_holding(data, key, skip=data / "admin.key")
    assert not key_files, f"the admin key leaked into {key_files}"
    assert key not in launcher.text


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_stopping_the_launcher_stops_the_worker_and_requeues_its_job(tmp_path: Path, sig: str):
    """SIGTERM (``docker stop``, systemd) is forwarded to the API and the worker; a SIGKILLed
    launcher takes them down too (PR_SET_PDEATHSIG). Either way the worker hands its running job
    back to the queue and no process of the launcher is left."""
    if sig == "SIGKILL" and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    from api.database import make_engine, make_session_factory, sqlite_url_for
    from api.jobs import queue

    data = tmp_path / "data"
    launcher = Launcher(data, "--no-demo", "--stop-timeout", "30")
    try:
        launcher.wait_for("no demo project", timeout=120)
        client = launcher.client()
        r = client.post("/jobs", json={"kind": "steps", "payload": {"steps": 3000, "sleep_s": 0.1}})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = client.get(f"/jobs/{job_id}").json()
            if job["status"] == "running" and job["progress"] > 0:
                break
            time.sleep(0.2)
        assert job["status"] == "running", job
        children = _children(launcher.proc.pid)
        assert len(children) == 2, children  # the API and the worker
        launcher.proc.send_signal(getattr(signal, sig))  # the launcher alone, not its group
        launcher.proc.wait(60)
    finally:
        launcher.stop(signal.SIGKILL)  # only if the test failed before its signal
    left = _wait_gone(children, 45)
    for pid in left:  # do not leave them behind for the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes {left} outlived the launcher:\n{launcher.text}"
    if sig == "SIGTERM":
        assert launcher.proc.returncode == 0, launcher.text
        assert "stopped (SIGTERM)" in launcher.text
    engine = make_engine(sqlite_url_for(data))
    with make_session_factory(engine)() as s:
        job = queue.get_job(s, job_id=job_id)
        # handed back: queued again, owned by no worker, the attempt not counted
        assert (job.status, job.worker_id, job.attempts) == ("queued", None, 0), launcher.text
        assert 0 < job.progress < 1
    engine.dispose()


def test_the_key_shows_only_when_new_and_a_failed_demo_says_where_to_look(tmp_path: Path):
    from api.launch import AdminKey, demo_outcome, key_line

    key = AdminKey("ep_" + "k" * 40, "created", tmp_path / "admin.key")
    assert key.value in key_line(key, show=True)
    assert key.value not in key_line(key, show=False)
    assert str(key.path) in key_line(key, show=False)
    assert key_line(key._replace(origin="env"), show=False) == "from EARTHPLAT_ADMIN_KEY"
    base, demo = "http://127.0.0.1:8000", {"project": {"id": 7}}
    ready = demo_outcome(base, key, demo, {"id": 3, "status": "succeeded"})
    assert ready == "demo ready: http://127.0.0.1:8000/#/projects/7\n"
    failed = demo_outcome(base, key, demo, {"id": 3, "status": "failed", "message": "no bands"})
    assert failed.startswith("demo not ready: materialize job 3 failed: no bands\n")
    assert f"{base}/api/v1/jobs/3/logs" in failed and f"{base}/#/projects/7/jobs" in failed
    assert key.value not in failed and f"$(cat {key.path})" in failed


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
