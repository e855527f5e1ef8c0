"""Periods of a time range, and compositing several acquisitions into one image per period."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from earthplat.errors import WindowError

CompositeMethod = Literal["first", "median", "least_cloudy"]
COMPOSITE_METHODS = ("first", "median", "least_cloudy")


def parse_period(text: str | int | timedelta) -> timedelta:
    """``30d``, ``2w``, ``12h`` or a number of days."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(days=float(text))
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dwh]?)\s*", str(text))
    if not m:
        raise WindowError(f"period {text!r} is not like '30d', '2w' or '12h'")
    value, unit = float(m.group(1)), m.group(2) or "d"
    delta = {"d": timedelta(days=value), "w": timedelta(weeks=value), "h": timedelta(hours=value)}[
        unit
    ]
    if delta <= timedelta(0):
        raise WindowError("the period must be positive")
    return delta


def make_periods(
    start: datetime, end: datetime, period: str | timedelta, max_periods: int | None = None
) -> list[tuple[datetime, datetime]]:
    """Consecutive [start, end) periods from ``start``; the last one is cut at ``end``."""
    step = parse_period(period)
    out = []
    t = start
    while t < end and (max_periods is None or len(out) < max_periods):
        out.append((t, min(t + step, end)))
        t += step
    return out


def composite(
    stack: np.ndarray,
    valid: np.ndarray,
    method: CompositeMethod,
    cloud_fraction: list[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Composite N acquisitions of one period.

    stack: [N, C, H, W] values; valid: [N, H, W] usable pixels (not nodata, not cloud).
    Returns ([C, H, W] values, [H, W] validity). ``first`` takes each pixel from the earliest
    acquisition where it is valid; ``least_cloudy`` does the same after ordering acquisitions by
    cloud fraction; ``median`` is the per-pixel median over the valid acquisitions.
    """
    n = stack.shape[0]
    if n == 0:
        raise ValueError("nothing to composite")
    any_valid = valid.any(axis=0)
    if method == "median":
        data = np.where(valid[:, None], stack.astype(np.float64), np.nan)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(data, axis=0)
        out = (
            np.where(any_valid[None], med, 0).astype(stack.dtype, copy=False)
            if np.issubdtype(stack.dtype, np.floating)
            else np.where(any_valid[None], np.rint(np.nan_to_num(med)), 0).astype(stack.dtype)
        )
        return out, any_valid
    order = list(range(n))
    if method == "least_cloudy":
        fractions = cloud_fraction or [1.0 - float(valid[i].mean()) for i in range(n)]
        order = sorted(order, key=lambda i: (fractions[i], i))
    elif method != "first":
        raise WindowError(f"unknown composite method {method!r}; use {COMPOSITE_METHODS}")
    out = np.zeros(stack.shape[1:], dtype=stack.dtype)
    filled = np.zeros(stack.shape[2:], dtype=bool)
    for i in order:
        take = valid[i] & ~filled
        if take.any():
            out[:, take] = stack[i][:, take]
            filled |= take
        if filled.all():
            break
    return out, filled


def suggest_periods(
    start: datetime, acquired: list[datetime], max_empty: float = 0.5
) -> tuple[str, int, int] | None:
    """A ``(period, max_periods, empty)`` that fits acquisitions at ``acquired`` for periods
    starting at ``start``: among whole-day periods that leave at most ``max_empty`` of the
    periods (up to the last acquisition) empty, the one that keeps the most acquisition days in
    periods of their own, then the fewest periods; None without acquisitions after ``start``."""
    offsets = np.array(
        sorted({(t - start).total_seconds() / 86400 for t in acquired if t >= start})
    )
    if offsets.size == 0:
        return None
    days = np.arange(1, int(offsets[-1]) + 2)  # [P] candidate period lengths
    slot = np.floor(offsets[None, :] / days[:, None]).astype(np.int64)  # [P, N]
    total = slot[:, -1] + 1
    filled = np.array([len(np.unique(row)) for row in slot])
    empty = total - filled
    feasible = empty <= max_empty * total
    if feasible.any():
        order = np.lexsort((days, total, -filled, ~feasible))
    else:
        order = np.lexsort((days, empty / total))
    i = int(order[0])
    return f"{int(days[i])}d", int(total[i]), int(empty[i])
