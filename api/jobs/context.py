"""What a handler sees of its job: payload, directories, progress, logs and cancellation."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api.jobs import queue


class JobCancelled(Exception):
    """Raised at a step boundary when the job's cancellation was requested."""


class JobInterrupted(Exception):
    """Raised at a step boundary when the worker is shutting down (SIGTERM) or lost the
    job's lease; the job goes back to the queue and resumes later."""


class PermanentJobError(Exception):
    """A failure that retrying cannot fix (bad payload, missing project); no retry."""


class TransientJobError(Exception):
    """A failure worth retrying (the job is tried again after a back-off)."""


@dataclass
class JobContext:
    """Handed to a handler; every method is safe to call from the handler's thread."""

    job_id: int
    kind: str
    payload: dict[str, Any]
    project_id: int | None
    created_by: int | None
    attempt: int
    worker_id: str
    data_dir: Path
    """The platform's data directory (settings.data_dir, resolved)."""
    session_factory: sessionmaker[Session]
    settings: Any = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    """Set on SIGTERM: stop at the next step boundary."""
    lost_event: threading.Event = field(default_factory=threading.Event)
    """Set by the heartbeat thread when the lease was lost."""
    cancel_event: threading.Event = field(default_factory=threading.Event)
    """Set by the heartbeat thread when a cancel was requested."""

    @property
    def params(self) -> Any:
        """The payload as its kind's typed model (``api.jobs.payloads``)."""
        from api.errors import InvalidInputError
        from api.jobs.payloads import parse

        try:
            return parse(self.kind, self.payload)
        except InvalidInputError as e:  # a row written before validation, or by hand
            raise PermanentJobError(str(e)) from None

    @property
    def work_dir(self) -> Path:
        """``DATA_DIR/jobs/ID``: the job's own files (outputs served for download). Stable
        across attempts, so a retried job finds what the earlier attempt wrote."""
        path = self.data_dir / "jobs" / str(self.job_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def project_dir(self) -> Path:
        if self.project_id is None:
            raise PermanentJobError(f"job {self.job_id} ({self.kind}) needs a project_id")
        return self.data_dir / "projects" / str(self.project_id)

    # --- reporting ------------------------------------------------------------------------
    def progress(self, fraction: float | None = None, message: str | None = None) -> None:
        """Record progress (0-1) and an optional status message; also a cancel check."""
        with self.session_factory() as s:
            queue.set_progress(
                s, job_id=self.job_id, worker_id=self.worker_id, progress=fraction, message=message
            )
        self.check()

    def log(self, line: str, level: str = "info") -> None:
        with self.session_factory() as s:
            queue.append_log(s, job_id=self.job_id, line=line, level=level)

    # --- cancellation -------------------------------------------------------------------------
    @property
    def should_stop(self) -> bool:
        return self.cancel_event.is_set() or self.stop_event.is_set() or self.lost_event.is_set()

    def check(self) -> None:
        """Call between steps: raises :class:`JobCancelled` if the job was cancelled and
        :class:`JobInterrupted` if the worker is stopping or lost the job."""
        if self.cancel_event.is_set():
            raise JobCancelled(f"job {self.job_id} was cancelled")
        if self.lost_event.is_set():
            raise JobInterrupted(f"job {self.job_id}: the lease was lost to another worker")
        if self.stop_event.is_set():
            raise JobInterrupted(f"job {self.job_id}: the worker is shutting down")

    def refresh_cancel(self) -> bool:
        """Ask the database now (the heartbeat thread does it every few seconds anyway)."""
        with self.session_factory() as s:
            if queue.get_job(s, job_id=self.job_id).cancel_requested:
                self.cancel_event.set()
        return self.cancel_event.is_set()
