"""A real worker process killed with SIGKILL mid-job: after its lease expires another worker
reclaims the job and finishes it from the last checkpoint. SIGTERM requeues cleanly. On SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from api.database import import_models, make_engine, make_session_factory, upgrade
from api.jobs import queue
from tests.conftest import REPO


@pytest.fixture
def factory(db_url):
    import_models()
    upgrade(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def _worker(db_url: str, data_dir: Path, *extra: str) -> subprocess.Popen:
    env = dict(
        os.environ,
        EARTHPLAT_DATABASE_URL=db_url,
        EARTHPLAT_DATA_DIR=str(data_dir),
        PYTHONPATH=str(REPO),
    )
    cmd = [sys.executable, "-m", "api.jobs.worker", "--poll-interval", "0.1", *extra]
    return subprocess.Popen(
        cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _wait(factory, job_id, pred, proc=None, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as s:
            job = queue.get_job(s, job_id=job_id)
            s.commit()
        if pred(job):
            return job
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace")
            raise AssertionError(f"worker exited with {proc.returncode}:\n{out[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} stuck: {job.status} {job.progress} {job.message}")


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def test_killed_worker_job_is_reclaimed_and_resumes(factory, db_url, data_dir):
    with factory() as s:
        job = queue.enqueue(s, kind="steps", payload={"steps": 30, "sleep_s": 0.1})
    first = _worker(db_url, data_dir, "--lease", "1.5")
    try:
        running = _wait(factory, job.id, lambda j: j.progress >= 0.2, first)
        assert running.status == "running" and running.worker_id
        first_id = running.worker_id
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    state = data_dir / "jobs" / str(job.id) / "steps.json"
    done_at_kill = json.loads(state.read_text())["done"]
    assert done_at_kill >= 6
    with factory() as s:  # nobody has it yet: still "running", owned by the dead worker
        stale = queue.get_job(s, job_id=job.id)
        assert (stale.status, stale.worker_id) == ("running", first_id)

    second = _worker(db_url, data_dir, "--lease", "1.5")
    try:
        finished = _wait(factory, job.id, lambda j: j.status == "succeeded", second)
    finally:
        assert _stop(second) == 0
    assert finished.attempts == 2 and finished.worker_id != first_id
    assert finished.progress == 1.0
    # the second attempt resumed from the checkpoint instead of starting over
    assert finished.result["resumed_from"] >= done_at_kill
    assert finished.result["attempt"] == 2
    with factory() as s:
        lines = [x.line for x in queue.logs(s, job_id=job.id)]
    assert any(x.startswith("resuming after step") for x in lines)
    assert [x for x in lines if x == "step 30/30"] == ["step 30/30"]


def test_sigterm_requeues_the_running_job_and_exits_cleanly(factory, db_url, data_dir):
    with factory() as s:
        job = queue.enqueue(s, kind="steps", payload={"steps": 300, "sleep_s": 0.05})
    proc = _worker(db_url, data_dir, "--lease", "30")
    try:
        _wait(factory, job.id, lambda j: j.progress > 0, proc)
    finally:
        code = _stop(proc)
    assert code == 0
    with factory() as s:
        got = queue.get_job(s, job_id=job.id)
    # handed back at once (no waiting for the 30 s lease), the attempt not counted
    assert (got.status, got.attempts, got.worker_id) == ("queued", 0, None)
    assert 0 < got.progress < 1


@pytest.mark.slow
def test_killed_finetune_job_resumes_from_its_last_checkpoint(settings, shared_data):
    """A fine-tune job whose worker is killed after its first checkpoint: the next worker's
    attempt resumes the same run dir from that checkpoint (global step > 0)."""
    pytest.importorskip("lightning")
    import torch

    from tests.integration.platform.conftest import ADMIN
    from tests.integration.platform.test_job_flow import (
        annotated_project,
        open_client,
        tiny_finetune,
    )

    with open_client(settings) as client:
        pid, _ = annotated_project(client, shared_data, n=5)
        r = client.post(
            f"/api/v1/projects/{pid}/jobs",
            json={"kind": "finetune", "payload": {"overrides": tiny_finetune(40, 2)}},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        factory = client.app_state.session_factory
        db_url, data_dir = settings.resolved_database_url, settings.data_dir
        ckpts = data_dir / "projects" / str(pid) / "runs" / f"job-{job_id}" / "checkpoints"

        first = _worker(db_url, data_dir, "--lease", "3")
        try:
            deadline = time.monotonic() + 240
            while not list(ckpts.glob("*.ckpt")):
                assert first.poll() is None, first.stdout.read().decode(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "no checkpoint was written"
                time.sleep(0.2)
            time.sleep(0.3)  # let the checkpoint file be complete (written to a tmp, renamed)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        with factory() as s:
            assert queue.get_job(s, job_id=job_id).status == "running"  # orphaned

        second = _worker(db_url, data_dir, "--lease", "3")
        try:
            job = _wait(
                factory, job_id, lambda j: j.status in ("succeeded", "failed"), second, timeout=300
            )
        finally:
            _stop(second)
    assert job.status == "succeeded", job.message
    assert job.attempts == 2
    resumed = job.result["resumed_from"]
    assert resumed is not None
    step = torch.load(ckpts / resumed, map_location="cpu", weights_only=False)["global_step"]
    assert step > 0
    final = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=False)
    assert final["global_step"] == 40
    with factory() as s:
        lines = [x.line for x in queue.logs(s, job_id=job_id)]
    assert any(x.startswith("resuming from") for x in lines)
