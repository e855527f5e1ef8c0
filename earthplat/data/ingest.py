"""Running prepare + materialise over many windows: parallel, retried, resumable.

Work is per (window, layer). Finished layers (metadata JSON present) are skipped, so re-running
an interrupted ingest resumes it. Transient failures (I/O, HTTP) are retried with back-off;
deterministic ones (bad input, no data) are not. Without ``ignore_errors`` the first failure
stops the run; with it, the run goes on and ends with a summary of what failed and why.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from earthplat.data.dataset import Dataset
from earthplat.data.materialize import LayerSpec, materialize
from earthplat.data.window import Window
from earthplat.errors import DataError, EarthplatError


class IngestError(EarthplatError, RuntimeError):
    """An ingest stopped on a failure (or, with ignore_errors, some windows failed)."""


@dataclass
class IngestConfig:
    """How an ingest runs."""

    workers: int = 2
    """Windows processed concurrently (threads: GDAL releases the GIL while reading)."""
    retries: int = 2
    """Extra attempts for transient (I/O) failures."""
    backoff_s: float = 0.5
    """First retry delay; doubles each attempt."""
    ignore_errors: bool = False
    """Continue past failed windows and report them at the end."""
    force: bool = False
    """Redo finished layers."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class IngestReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"ingest: {len(self.done)} materialised, {len(self.skipped)} already done, "
            f"{len(self.failed)} failed in {self.seconds:.1f}s"
        ]
        lines += [f"  FAILED {name}: {reason}" for name, reason in sorted(self.failed.items())]
        return "\n".join(lines)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, DataError):
        return False
    try:
        from rasterio.errors import RasterioIOError

        if isinstance(exc, RasterioIOError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


def _one(dataset: Dataset, window: Window, layer: LayerSpec, source, cfg: IngestConfig) -> bool:
    """Materialise one window layer; True if work was done, False if it was already done."""
    if not cfg.force and dataset.layer_done(window, layer.name):
        return False
    delay = cfg.backoff_s
    for attempt in range(cfg.retries + 1):
        try:
            materialize(dataset, window, layer, source, force=cfg.force)
            return True
        except Exception as exc:
            if attempt == cfg.retries or not _transient(exc):
                raise
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def ingest(
    dataset: Dataset | str,
    windows: list[Window],
    layer: LayerSpec,
    source,
    config: IngestConfig | None = None,
) -> IngestReport:
    """Prepare and materialise ``layer`` for every window."""
    from tqdm.auto import tqdm

    cfg = config or IngestConfig()
    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    report = IngestReport()
    t0 = time.perf_counter()
    bar = tqdm(
        total=len(windows), desc=f"ingest {layer.name}", unit="window", disable=not cfg.progress
    )
    pending = list(windows)
    with ThreadPoolExecutor(max_workers=max(1, cfg.workers)) as pool:
        futures = {}
        stop = False
        while pending or futures:
            while pending and not stop and len(futures) < 2 * max(1, cfg.workers):
                w = pending.pop(0)
                futures[pool.submit(_one, ds, w, layer, source, cfg)] = w
            if not futures:
                break
            finished, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in finished:
                w = futures.pop(fut)
                bar.update(1)
                try:
                    (report.done if fut.result() else report.skipped).append(w.name)
                except Exception as exc:
                    report.failed[w.name] = f"{type(exc).__name__}: {exc}"
                    if not cfg.ignore_errors:
                        stop = True
                        pending.clear()
    bar.close()
    report.seconds = time.perf_counter() - t0
    if report.failed and not cfg.ignore_errors:
        name, reason = next(iter(report.failed.items()))
        raise IngestError(
            f"window {name} failed: {reason}\n(re-run to resume; pass "
            "--ignore_errors true to continue past failed windows)\n" + report.summary()
        )
    return report
