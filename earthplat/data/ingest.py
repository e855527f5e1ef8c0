"""Running prepare + materialise over many windows: parallel, retried, resumable.

Work is per (window, layer). Finished layers (metadata JSON present) are skipped, so re-running
an interrupted ingest resumes it. Transient failures (I/O, HTTP) are retried with back-off;
deterministic ones (bad input, no data) are not. Without ``ignore_errors`` the first failure
stops the run; with it, the run goes on and ends with a summary of what failed and why.
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from earthplat.data.dataset import Dataset
from earthplat.data.materialize import LayerSpec, materialize
from earthplat.data.window import Window
from earthplat.errors import DataError, EarthplatError, NoDataError


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
    missing: dict[str, str] = field(default_factory=dict)
    """Windows no source covers (no item, or no valid pixel): every period is missing and no
    layer is written. Not a failure: the ingest goes on."""
    empty_periods: dict[str, list[int]] = field(default_factory=dict)
    """Period start (YYYY-MM-DD) -> [windows without data in it, windows with that period],
    over the windows materialised in this run."""
    advice: str | None = None
    """A ``--period``/``--max_periods`` that fits the data, when most periods were empty."""
    seconds: float = 0.0

    def record(self, meta: dict) -> None:
        """Count a materialised layer's empty periods."""
        missing = set(meta.get("missing_periods", []))
        for i, (p0, _) in enumerate(meta.get("periods", [])):
            counts = self.empty_periods.setdefault(str(p0)[:10], [0, 0])
            counts[0] += i in missing
            counts[1] += 1

    @property
    def empty_fraction(self) -> float:
        """Share of (window, period) pairs without data."""
        empty = sum(c[0] for c in self.empty_periods.values())
        total = sum(c[1] for c in self.empty_periods.values())
        return empty / total if total else 0.0

    def summary(self) -> str:
        lines = [
            f"ingest: {len(self.done)} materialised, {len(self.skipped)} already done, "
            f"{len(self.missing)} missing (no data), {len(self.failed)} failed in "
            f"{self.seconds:.1f}s"
        ]
        empty = {p: c for p, c in sorted(self.empty_periods.items()) if c[0]}
        if empty:
            shown = ", ".join(f"{p} ({c[0]}/{c[1]} windows)" for p, c in list(empty.items())[:8])
            more = f" and {len(empty) - 8} more" if len(empty) > 8 else ""
            lines.append(f"  periods with no data: {shown}{more}")
        if self.advice:
            lines.append(f"  WARNING {self.advice}")
        lines += [f"  MISSING {name}: {reason}" for name, reason in sorted(self.missing.items())]
        lines += [f"  FAILED {name}: {reason}" for name, reason in sorted(self.failed.items())]
        return "\n".join(lines)


def period_advice(meta: dict, layer: LayerSpec) -> str | None:
    """A warning with a better ``--period``/``--max_periods`` when most of a layer's periods
    are empty (e.g. a two-date file over 25 monthly periods)."""
    from earthplat.data.timeseries import suggest_periods
    from earthplat.data.window import parse_time

    periods = meta.get("periods", [])
    empty = len(meta.get("missing_periods", []))
    if len(periods) < 2 or empty <= len(periods) / 2:
        return None
    start = parse_time(periods[0][0])
    fit = suggest_periods(start, [parse_time(t) for t in meta.get("acquired", [])])
    text = (
        f"{empty} of {len(periods)} periods of window {meta.get('window')} hold no data "
        f"(--period {layer.period}); the data fall on {len(meta.get('acquired', []))} dates"
    )
    if fit is not None:
        text += f": --period {fit[0]} --max_periods {fit[1]} gives {fit[1]} periods, {fit[2]} empty"
    return text


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


def _one(
    dataset: Dataset, window: Window, layer: LayerSpec, source, cfg: IngestConfig
) -> dict | None:
    """Materialise one window layer; its metadata if work was done, None if it was already
    done."""
    if not cfg.force and dataset.layer_done(window, layer.name):
        return None
    delay = cfg.backoff_s
    for attempt in range(cfg.retries + 1):
        try:
            return materialize(dataset, window, layer, source, force=cfg.force)
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
                    meta = fut.result()
                except NoDataError as exc:
                    report.missing[w.name] = str(exc)
                    continue
                except Exception as exc:
                    report.failed[w.name] = f"{type(exc).__name__}: {exc}"
                    if not cfg.ignore_errors:
                        stop = True
                        pending.clear()
                    continue
                if meta is None:
                    report.skipped.append(w.name)
                    continue
                report.done.append(w.name)
                report.record(meta)
                if report.advice is None:
                    report.advice = period_advice(meta, layer)
                    if report.advice:  # say it now, not after hours of mostly empty periods
                        warnings.warn(report.advice, UserWarning, stacklevel=2)
    bar.close()
    report.seconds = time.perf_counter() - t0
    if report.failed and not cfg.ignore_errors:
        name, reason = next(iter(report.failed.items()))
        raise IngestError(
            f"window {name} failed: {reason}\n(re-run to resume; pass "
            "--ignore_errors true to continue past failed windows)\n" + report.summary()
        )
    return report
