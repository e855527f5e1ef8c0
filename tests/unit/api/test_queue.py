"""The job queue on SQLite and PostgreSQL: exactly-once claims, retries, cancel, lease expiry."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from api.database import import_models, make_engine, make_session_factory
from api.jobs import queue
from labeling.db import Base, utcnow

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_schema_engine():
    """An engine on a fresh schema of the test database (dropped afterwards), or a skip."""
    import sqlalchemy as sa

    try:
        admin = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with admin.connect() as c:
            c.execute(sa.text("select 1"))
    except Exception as e:
        pytest.skip(f"missing component: PostgreSQL at 127.0.0.1:5432 ({type(e).__name__})")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with admin.begin() as c:
        c.execute(sa.text(f'create schema "{schema}"'))
    engine = make_engine(f"{PG_URL}?options=-csearch_path%3D{schema}")
    return engine, admin, schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def factory(request, tmp_path):
    import_models()
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
        admin = schema = None
    else:
        engine, admin, schema = _pg_schema_engine()
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()
    if admin is not None:
        import sqlalchemy as sa

        with admin.begin() as c:
            c.execute(sa.text(f'drop schema "{schema}" cascade'))
        admin.dispose()


def test_concurrent_claimers_take_each_job_exactly_once(factory):
    n_jobs, n_threads = 40, 6
    with factory() as s:
        ids = [queue.enqueue(s, kind="steps", payload={"i": i}).id for i in range(n_jobs)]
    claimed: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def claimer(k: int) -> None:
        try:
            barrier.wait()
            while True:
                with factory() as s:
                    job = queue.claim(s, worker_id=f"w{k}", lease_s=60)
                if job is None:
                    return
                with lock:
                    claimed.append((f"w{k}", job.id))
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    got = [job_id for _, job_id in claimed]
    assert sorted(got) == sorted(ids)  # every job once, none twice
    with factory() as s:
        for worker, job_id in claimed:
            job = queue.get_job(s, job_id=job_id)
            assert (job.status, job.worker_id, job.attempts) == ("running", worker, 1)


def test_failure_retries_with_backoff_then_fails(factory):
    with factory() as s:
        job = queue.enqueue(s, kind="steps", max_attempts=2)
        assert queue.claim(s, worker_id="a").id == job.id
        assert queue.fail(s, job_id=job.id, worker_id="a", error="boom", backoff_s=30) == "queued"
        j = queue.get_job(s, job_id=job.id)
        assert j.status == "queued" and "boom" in j.message and j.worker_id is None
        assert queue.claim(s, worker_id="a") is None  # backing off
        later = utcnow() + timedelta(seconds=31)
        again = queue.claim(s, worker_id="b", now=later)
        assert again.id == job.id and again.attempts == 2
        assert queue.fail(s, job_id=job.id, worker_id="b", error="boom2") == "failed"
        j = queue.get_job(s, job_id=job.id)
        assert j.status == "failed" and j.message == "boom2" and j.finished_at is not None
        assert queue.claim(s, worker_id="c", now=later + timedelta(hours=1)) is None


def test_permanent_failure_does_not_retry(factory):
    with factory() as s:
        job = queue.enqueue(s, kind="steps", max_attempts=5)
        queue.claim(s, worker_id="a")
        assert queue.fail(s, job_id=job.id, worker_id="a", error="bad", retry=False) == "failed"


def test_cancel_queued_and_running(factory):
    with factory() as s:
        queued = queue.enqueue(s, kind="steps")
        running = queue.enqueue(s, kind="steps")
        assert queue.cancel(s, job_id=queued.id).status == "cancelled"
        got = queue.claim(s, worker_id="a")
        assert got.id == running.id  # the cancelled one is never handed out
        assert queue.heartbeat(s, job_id=running.id, worker_id="a").cancel_requested is False
        job = queue.cancel(s, job_id=running.id)
        assert job.status == "running" and job.cancel_requested
        beat = queue.heartbeat(s, job_id=running.id, worker_id="a")
        assert beat.owned and beat.cancel_requested
        assert queue.mark_cancelled(s, job_id=running.id, worker_id="a")
        assert queue.get_job(s, job_id=running.id).status == "cancelled"
        # a finished job stays as it is
        assert queue.cancel(s, job_id=running.id).status == "cancelled"


def test_expired_lease_is_reclaimed_and_old_owner_is_fenced_off(factory):
    with factory() as s:
        job = queue.enqueue(s, kind="steps", max_attempts=3)
        assert queue.claim(s, worker_id="dead", lease_s=30).id == job.id
        # before the lease ends nobody else gets it
        assert queue.claim(s, worker_id="b", now=utcnow() + timedelta(seconds=10)) is None
        later = utcnow() + timedelta(seconds=31)
        taken = queue.claim(s, worker_id="b", lease_s=30, now=later)
        assert taken.id == job.id and taken.attempts == 2 and taken.worker_id == "b"
        # the old owner comes back: it no longer owns the job and cannot finish it
        assert queue.heartbeat(s, job_id=job.id, worker_id="dead").owned is False
        assert not queue.set_progress(s, job_id=job.id, worker_id="dead", progress=0.9)
        assert not queue.complete(s, job_id=job.id, worker_id="dead", result={"x": 1})
        assert queue.complete(s, job_id=job.id, worker_id="b", result={"ok": True})
        j = queue.get_job(s, job_id=job.id)
        assert (j.status, j.result, j.progress) == ("succeeded", {"ok": True}, 1.0)


def test_lease_expiry_on_last_attempt_fails_the_job(factory):
    with factory() as s:
        job = queue.enqueue(s, kind="steps", max_attempts=1)
        queue.claim(s, worker_id="dead", lease_s=5)
        assert queue.reclaim_expired(s, now=utcnow() + timedelta(seconds=6)) == 1
        j = queue.get_job(s, job_id=job.id)
        assert j.status == "failed" and "lease expired" in j.message


def test_release_requeues_without_counting_the_attempt(factory):
    with factory() as s:
        job = queue.enqueue(s, kind="steps", max_attempts=1)
        queue.claim(s, worker_id="a")
        assert queue.release(s, job_id=job.id, worker_id="a")
        j = queue.get_job(s, job_id=job.id)
        assert (j.status, j.attempts) == ("queued", 0)
        assert queue.claim(s, worker_id="b").attempts == 1


def test_progress_logs_and_listing(factory):
    with factory() as s:
        job = queue.enqueue(s, kind="steps", payload={"steps": 3})
        other = queue.enqueue(s, kind="materialize")
        queue.claim(s, worker_id="a", kinds=["steps"])
        assert queue.set_progress(s, job_id=job.id, worker_id="a", progress=1.7, message="m")
        j = queue.get_job(s, job_id=job.id)
        assert (j.progress, j.message) == (1.0, "m")  # clamped
        for i in range(3):
            queue.append_log(s, job_id=job.id, line=f"line {i}")
        lines = queue.logs(s, job_id=job.id)
        assert [x.line for x in lines] == ["line 0", "line 1", "line 2"]
        assert [x.line for x in queue.logs(s, job_id=job.id, after_id=lines[0].id)] == [
            "line 1",
            "line 2",
        ]
        assert [x.id for x in queue.list_jobs(s, kind="materialize")] == [other.id]
        assert [x.id for x in queue.list_jobs(s, status="running")] == [job.id]
        with pytest.raises(queue.JobNotFoundError):
            queue.get_job(s, job_id=10_000)
