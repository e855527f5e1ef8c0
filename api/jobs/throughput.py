"""Fine-tuning throughput: measured by each fine-tune job, and the estimate it gives the next.

The fine-tune handler's callback feeds a ``ThroughputMeter`` (training batches only) and
records ``meter.result()`` in the job result (``throughput``) and the registered model's
config (``platform.throughput``). ``estimate`` turns the succeeded jobs' measurements for one
encoder into the seconds a planned run of ``steps`` x ``batch_size`` samples will train.

What is measured: training samples over the wall time of the training loop (data loading,
forward, backward, optimiser step and the checkpoints it saves), from the end of the first
batch to the end of the last, less any validation in between. Setup (export, model build,
data-loader start) and the first batch (worker start-up, allocator and kernel warm-up) are
left out, so the figure is the steady rate a longer run keeps; a run of a single batch is
measured over that batch.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labeling.jobs import Job


class ThroughputMeter:
    """Training samples per second of the steady loop (see the module docstring)."""

    def __init__(self, clock=time.perf_counter) -> None:
        self.clock = clock
        self.started: float | None = None
        self.batches = 0
        self.first: tuple[float, int] | None = None
        """(seconds, samples) of the first batch, counted from ``start``."""
        self.steady_from: float | None = None
        self.steady_samples = 0
        self.last_end: float | None = None
        self.paused_at: float | None = None
        self.paused_s = 0.0
        self.stopped = False

    def start(self) -> None:
        """The training loop begins (after setup)."""
        self.started = self.clock()

    def stop(self) -> None:
        """The training loop ended: the validation and testing after it are not in it."""
        self.resume()
        self.stopped = True

    def batch_end(self, samples: int) -> None:
        if self.stopped:
            return
        now = self.clock()
        if self.started is None:
            self.started = now
        self.batches += 1
        if self.first is None:
            self.first = (now - self.started, samples)
            self.steady_from = now
            self.paused_s = 0.0
        else:
            self.steady_samples += samples
        self.last_end = now

    def pause(self) -> None:
        """Validation starts: its time is not training time."""
        if self.steady_from is not None and self.paused_at is None and not self.stopped:
            self.paused_at = self.clock()

    def resume(self) -> None:
        if self.paused_at is not None:
            self.paused_s += self.clock() - self.paused_at
            self.paused_at = None

    def result(self, **facts: Any) -> dict[str, Any]:
        """``{samples_per_s, samples, seconds, batches, **facts}``; ``samples_per_s`` is
        ``None`` when no batch ran (a resumed run that had finished training)."""
        samples, seconds = 0, 0.0
        if self.batches > 1:
            samples = self.steady_samples
            seconds = self.last_end - self.steady_from - self.paused_s
        elif self.first is not None:
            seconds, samples = self.first
        rate = samples / seconds if samples and seconds > 0 else None
        return {
            "samples_per_s": round(rate, 4) if rate else None,
            "samples": samples,
            "seconds": round(seconds, 4),
            "batches": self.batches,
            **facts,
        }


def measurements(session: Session, *, encoder: str, limit: int = 200) -> list[tuple[int, float]]:
    """``(job id, samples/s)`` of the newest succeeded fine-tune jobs (any project) that
    measured ``encoder``, newest first."""
    query = (
        select(Job.id, Job.result)
        .where(Job.kind == "finetune", Job.status == "succeeded")
        .order_by(Job.id.desc())
    )
    out = []
    for job_id, result in session.execute(query):
        measured = (result or {}).get("throughput") or {}
        rate = measured.get("samples_per_s")
        if measured.get("encoder") == encoder and isinstance(rate, int | float) and rate > 0:
            out.append((job_id, float(rate)))
            if len(out) >= limit:
                break
    return out


def estimate(session: Session, *, encoder: str, steps: int, batch_size: int) -> dict[str, Any]:
    """``{samples_per_s, seconds, based_on, note}`` for ``steps`` x ``batch_size`` samples
    with ``encoder``: the median of the measured runs, or ``None`` before the first."""
    found = measurements(session, encoder=encoder)
    if not found:
        return {
            "samples_per_s": None,
            "seconds": None,
            "based_on": [],
            "note": (
                f"no fine-tune with {encoder} has succeeded on this platform yet; the first "
                "run measures its throughput and later estimates use it"
            ),
        }
    rate = statistics.median(r for _, r in found)
    return {
        "samples_per_s": rate,
        "seconds": steps * batch_size / rate,
        "based_on": sorted(job_id for job_id, _ in found),
        "note": (
            f"median of {len(found)} measured run(s) with {encoder}, on whatever device and "
            "chip size they had; the training loop only: export, setup, validation and "
            "testing add to it"
        ),
    }
