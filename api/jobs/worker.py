"""The job worker: claim a job, run its handler in-process, keep the lease alive, record the end.

Run it with ``python -m api.jobs.worker`` (settings from ``EARTHPLAT_*`` variables, like the
API). Any number of workers may run against one database (PostgreSQL: across machines).

- A heartbeat thread extends the lease every ``lease_s / 3`` seconds and learns whether a
  cancellation was requested; handlers see it at their next step (``ctx.check()``,
  ``ctx.progress()``).
- A worker killed outright (``kill -9``, power loss) stops heartbeating; once its lease
  expires another worker reclaims the job. Handlers are written to resume: ``materialize`` skips
  finished layers, ``finetune`` restarts from the run dir's last checkpoint.
- SIGTERM/SIGINT: the worker stops at the next step boundary, hands the running job back to the
  queue without counting the attempt, and exits 0.
- Only transient failures (I/O, network, a lost database connection, ``TransientJobError``)
  retry, with exponential back-off up to the job's ``max_attempts``; anything else (a bad
  payload or config, a model that cannot read the data) fails the job at once with its
  message.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import traceback
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api.jobs import queue
from api.jobs.context import JobCancelled, JobContext, JobInterrupted, TransientJobError
from api.jobs.handlers import get_handler
from labeling.jobs import Job

log = logging.getLogger("earthplat.worker")


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


PERMANENT_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
"""I/O errors that another attempt would meet again."""


def _transient(exc: BaseException) -> bool:
    """Whether retrying may help: only I/O, network and database-connection failures (and a
    handler's explicit ``TransientJobError``) are retried; everything else (a bad payload or
    config, a model that cannot read the data, a bug) fails the job at once with its message."""
    if isinstance(exc, TransientJobError):
        return True
    if isinstance(exc, PERMANENT_OS_ERRORS):
        return False
    if isinstance(exc, OSError | TimeoutError | ConnectionError):
        return True
    from sqlalchemy.exc import DisconnectionError, OperationalError

    return isinstance(exc, OperationalError | DisconnectionError)


class _Heartbeat(threading.Thread):
    def __init__(self, ctx: JobContext, lease_s: float) -> None:
        super().__init__(name=f"heartbeat-{ctx.job_id}", daemon=True)
        self.ctx, self.lease_s = ctx, lease_s
        self.done = threading.Event()

    def run(self) -> None:
        interval = max(self.lease_s / 3.0, 0.05)
        while not self.done.wait(interval):
            try:
                with self.ctx.session_factory() as s:
                    beat = queue.heartbeat(
                        s,
                        job_id=self.ctx.job_id,
                        worker_id=self.ctx.worker_id,
                        lease_s=self.lease_s,
                    )
            except Exception as exc:  # the database blinked: try again next beat
                log.warning("heartbeat of job %s failed: %s", self.ctx.job_id, exc)
                continue
            if beat.cancel_requested:
                self.ctx.cancel_event.set()
            if not beat.owned:
                self.ctx.lost_event.set()
                return


def run_job(
    job: Job,
    *,
    session_factory: sessionmaker[Session],
    worker_id: str,
    data_dir: Path,
    settings: Any = None,
    lease_s: float = 30.0,
    backoff_s: float = 5.0,
    stop_event: threading.Event | None = None,
) -> str | None:
    """Run one claimed job to its end; returns its new status."""
    ctx = JobContext(
        job_id=job.id,
        kind=job.kind,
        payload=dict(job.payload or {}),
        project_id=job.project_id,
        created_by=job.created_by,
        attempt=job.attempts,
        worker_id=worker_id,
        data_dir=Path(data_dir).expanduser().resolve(),
        session_factory=session_factory,
        settings=settings,
        stop_event=stop_event or threading.Event(),
    )
    beat = _Heartbeat(ctx, lease_s)
    beat.start()
    ctx.log(f"attempt {job.attempts}/{job.max_attempts} on worker {worker_id}")
    try:
        handler = get_handler(job.kind)
        ctx.check()
        result = handler(ctx) or {}
    except JobCancelled:
        with session_factory() as s:
            queue.mark_cancelled(s, job_id=job.id, worker_id=worker_id)
        ctx.log("cancelled", "warning")
        return "cancelled"
    except JobInterrupted as exc:
        ctx.log(f"interrupted: {exc}", "warning")
        if ctx.lost_event.is_set():
            return None
        with session_factory() as s:
            queue.release(s, job_id=job.id, worker_id=worker_id)
        return "queued"
    except (Exception, SystemExit) as exc:  # a handler's sys.exit must not end the worker
        error = f"{type(exc).__name__}: {exc}"
        ctx.log(traceback.format_exc(), "error")
        if ctx.cancel_event.is_set() or ctx.refresh_cancel():
            with session_factory() as s:
                queue.mark_cancelled(s, job_id=job.id, worker_id=worker_id)
            return "cancelled"
        with session_factory() as s:
            status = queue.fail(
                s,
                job_id=job.id,
                worker_id=worker_id,
                error=error,
                retry=_transient(exc) and not isinstance(exc, SystemExit),
                backoff_s=backoff_s,
            )
        return status
    finally:
        beat.done.set()
        beat.join(timeout=5)
    ctx.log("succeeded")
    with session_factory() as s:
        ok = queue.complete(s, job_id=job.id, worker_id=worker_id, result=result)
    return "succeeded" if ok else None


def run_worker(
    settings: Any = None,
    *,
    once: bool = False,
    poll_interval: float = 2.0,
    worker_id: str | None = None,
    lease_s: float = 30.0,
    backoff_s: float = 5.0,
    kinds: list[str] | None = None,
    session_factory: sessionmaker[Session] | None = None,
    stop_event: threading.Event | None = None,
    install_signals: bool | None = None,
) -> int:
    """Claim and run jobs until stopped; returns the number of jobs run.

    ``once``: return as soon as no job is ready instead of polling every ``poll_interval``
    seconds. ``kinds`` restricts the job kinds this worker takes. ``stop_event`` (or SIGTERM /
    SIGINT when running in the main thread) stops the loop at the next step boundary.
    """
    if settings is None:
        from api.settings import get_settings

        settings = get_settings()
    if session_factory is None:
        from api.database import make_engine, make_session_factory

        session_factory = make_session_factory(make_engine(settings.resolved_database_url))
    worker_id = worker_id or default_worker_id()
    stop = stop_event or threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    previous: dict[int, Any] = {}
    if install_signals if install_signals is not None else main_thread:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    log.info("worker %s started", worker_id)
    count = 0
    try:
        while not stop.is_set():
            with session_factory() as s:
                job = queue.claim(s, worker_id=worker_id, lease_s=lease_s, kinds=kinds)
            if job is None:
                if once:
                    break
                stop.wait(poll_interval)
                continue
            log.info("job %s (%s) claimed", job.id, job.kind)
            status = run_job(
                job,
                session_factory=session_factory,
                worker_id=worker_id,
                data_dir=Path(settings.data_dir),
                settings=settings,
                lease_s=lease_s,
                backoff_s=backoff_s,
                stop_event=stop,
            )
            log.info("job %s -> %s", job.id, status)
            count += 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("worker %s stopped after %d job(s)", worker_id, count)
    return count


def main(argv: list[str] | None = None) -> int:
    """``python -m api.jobs.worker [--once] [--poll-interval S] [--lease S] [--kinds a,b]``."""
    parser = argparse.ArgumentParser(prog="earthplat worker", description=__doc__.split("\n")[0])
    parser.add_argument("--once", action="store_true", help="exit when no job is ready")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls")
    parser.add_argument("--lease", type=float, default=30.0, help="lease length in seconds")
    parser.add_argument("--backoff", type=float, default=5.0, help="first retry delay (s)")
    parser.add_argument("--worker-id", default=None)
    parser.add_argument("--kinds", default=None, help="comma-separated job kinds to take")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_worker(
        once=args.once,
        poll_interval=args.poll_interval,
        worker_id=args.worker_id,
        lease_s=args.lease,
        backoff_s=args.backoff,
        kinds=args.kinds.split(",") if args.kinds else None,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
