"""Jobs through the API with a worker running in-process: progress, logs, retries, cancel,
permissions; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

from api.jobs.payloads import PAYLOADS
from api.jobs.worker import run_worker
from tests.integration.platform.conftest import ADMIN, make_project, make_user, make_windows


def _submit(client, body, *, project_id=None, headers=ADMIN):
    url = f"/api/v1/projects/{project_id}/jobs" if project_id else "/api/v1/jobs"
    r = client.post(url, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def _job(client, job_id):
    r = client.get(f"/api/v1/jobs/{job_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def _wait(client, job_id, pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _job(client, job_id)
        if pred(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached the state: {_job(client, job_id)}")


def test_steps_job_runs_with_progress_and_logs(client, app, settings):
    job = _submit(client, {"kind": "steps", "payload": {"steps": 4, "sleep_s": 0.01}})
    assert (job["status"], job["progress"], job["attempts"]) == ("queued", 0.0, 0)
    ran = run_worker(
        settings,
        once=True,
        session_factory=app.state.session_factory,
        install_signals=False,
        lease_s=10,
    )
    assert ran == 1
    job = _job(client, job["id"])
    assert (job["status"], job["progress"], job["attempts"]) == ("succeeded", 1.0, 1)
    assert job["result"] == {"steps": 4, "resumed_from": 0, "attempt": 1}
    assert job["started_at"] and job["finished_at"] and job["message"] == "step 4/4"
    logs = client.get(f"/api/v1/jobs/{job['id']}/logs", headers=ADMIN).json()
    lines = [x["line"] for x in logs]
    assert [x for x in lines if x.startswith("step")] == [f"step {i}/4" for i in range(1, 5)]
    assert lines[-1] == "succeeded"
    tail = client.get(f"/api/v1/jobs/{job['id']}/logs?after_id={logs[-2]['id']}", headers=ADMIN)
    assert [x["line"] for x in tail.json()] == ["succeeded"]
    assert client.get(f"/api/v1/jobs/{job['id']}/artifacts", headers=ADMIN).json() == []
    r = client.get(f"/api/v1/jobs/{job['id']}/artifacts/nope", headers=ADMIN)
    assert r.status_code == 404 and "no artifact" in r.json()["detail"]


def test_failed_attempt_is_retried(client, app, settings):
    job = _submit(
        client, {"kind": "steps", "payload": {"steps": 2, "sleep_s": 0, "fail_attempts": 1}}
    )
    kwargs = dict(session_factory=app.state.session_factory, install_signals=False, backoff_s=0)
    run_worker(settings, once=True, **kwargs)
    job = _job(client, job["id"])
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
    logs = [x["line"] for x in client.get(f"/api/v1/jobs/{job['id']}/logs", headers=ADMIN).json()]
    assert any("planned failure on attempt 1" in x for x in logs)

    doomed = _submit(
        client,
        {"kind": "steps", "payload": {"steps": 1, "fail_attempts": 9}, "max_attempts": 2},
    )
    run_worker(settings, once=True, **kwargs)
    doomed = _job(client, doomed["id"])
    assert (doomed["status"], doomed["attempts"]) == ("failed", 2)
    assert "planned failure on attempt 2" in doomed["message"]


def test_cancel_queued_and_running_jobs(client, app, settings):
    queued = _submit(client, {"kind": "steps", "payload": {"steps": 1}})
    r = client.post(f"/api/v1/jobs/{queued['id']}/cancel", headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"

    slow = _submit(client, {"kind": "steps", "payload": {"steps": 400, "sleep_s": 0.05}})
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(settings,),
        kwargs=dict(
            session_factory=app.state.session_factory,
            install_signals=False,
            poll_interval=0.05,
            lease_s=0.6,
            stop_event=stop,
        ),
    )
    worker.start()
    try:
        _wait(client, slow["id"], lambda j: j["progress"] > 0)
        r = client.post(f"/api/v1/jobs/{slow['id']}/cancel", headers=ADMIN)
        assert r.json()["cancel_requested"] is True
        job = _wait(client, slow["id"], lambda j: j["status"] == "cancelled")
        assert job["progress"] < 1.0 and job["finished_at"]
    finally:
        stop.set()
        worker.join(30)
    assert not worker.is_alive()
    # the cancelled job was not handed out again
    assert _job(client, queued["id"])["attempts"] == 0


def test_stop_event_hands_the_running_job_back(client, app, settings):
    """What SIGTERM does: stop at the next step and requeue the job, attempt not counted."""
    job = _submit(client, {"kind": "steps", "payload": {"steps": 400, "sleep_s": 0.05}})
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(settings,),
        kwargs=dict(
            session_factory=app.state.session_factory,
            install_signals=False,
            poll_interval=0.05,
            lease_s=5,
            stop_event=stop,
        ),
    )
    worker.start()
    _wait(client, job["id"], lambda j: j["progress"] > 0)
    stop.set()
    worker.join(30)
    got = _job(client, job["id"])
    assert (got["status"], got["attempts"], got["worker_id"]) == ("queued", 0, None)
    assert 0 < got["progress"] < 1


def test_job_permissions_and_validation(client):
    project = make_project(client)
    pid = project["id"]
    _, viewer = make_user(client, "vic", project_id=pid, role="viewer")
    _, outsider = make_user(client, "oscar")
    r = client.post(f"/api/v1/projects/{pid}/jobs", json={"kind": "materialize"}, headers=viewer)
    assert r.status_code == 403
    r = client.post(f"/api/v1/projects/{pid}/jobs", json={"kind": "nope"}, headers=ADMIN)
    assert r.status_code == 422 and "unknown job kind" in r.json()["detail"]
    r = client.post("/api/v1/jobs", json={"kind": "steps"}, headers=viewer)
    assert r.status_code == 403  # project-less jobs are for platform admins
    r = client.post(f"/api/v1/projects/{pid}/jobs", json={"kind": "materialize"}, headers=ADMIN)
    assert r.status_code == 422 and "no dataset 'default'" in r.json()["detail"]  # no windows
    make_windows(client, pid, [-0.77, 38.08, -0.76, 38.09], size=64)
    job = _submit(client, {"kind": "materialize", "payload": {}}, project_id=pid)
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=viewer).status_code == 200
    listed = client.get(f"/api/v1/projects/{pid}/jobs", headers=viewer).json()
    assert [j["id"] for j in listed] == [job["id"]]
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=outsider).status_code == 403
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=viewer).status_code == 403
    assert client.get("/api/v1/jobs/999999", headers=ADMIN).status_code == 404
    assert client.get(f"/api/v1/jobs/{job['id']}").status_code == 401


def test_a_handler_that_exits_fails_its_job_not_the_worker(client, app, settings):
    import sys

    from api.jobs.handlers import HANDLERS, register

    def bail(ctx):
        sys.exit(3)

    register("bail", bail)
    try:
        bad = _submit(client, {"kind": "bail", "max_attempts": 3})
        good = _submit(client, {"kind": "steps", "payload": {"steps": 1, "sleep_s": 0}})
        ran = run_worker(
            settings, once=True, session_factory=app.state.session_factory, install_signals=False
        )
    finally:
        HANDLERS.pop("bail")
        PAYLOADS.pop("bail")
    assert ran == 2  # the worker went on to the next job
    bad = _job(client, bad["id"])
    assert (bad["status"], bad["attempts"]) == ("failed", 1) and "SystemExit" in bad["message"]
    assert _job(client, good["id"])["status"] == "succeeded"
