"""Per-step metrics of a run directory, merged across its attempts.

Each start of a run (first start or resume) logs to its own ``logs/attempt-NNN/metrics.csv`` so a
resume never overwrites what earlier attempts wrote. ``read_metrics`` merges them: for a step that
several attempts logged (work redone after a crash), the latest attempt wins.
"""

from __future__ import annotations

import csv
from pathlib import Path

LOG_DIR = "logs"


def next_attempt_name(run_dir: str | Path) -> str:
    root = Path(run_dir) / LOG_DIR
    existing = sorted(root.glob("attempt-*")) if root.is_dir() else []
    return f"attempt-{len(existing):03d}"


def read_metrics(run_dir: str | Path) -> dict[int, dict[str, float]]:
    """``{step: {metric: value}}`` over every attempt of the run, in attempt order."""
    merged: dict[int, dict[str, float]] = {}
    for path in sorted((Path(run_dir) / LOG_DIR).glob("attempt-*/metrics.csv")):
        attempt: dict[int, dict[str, float]] = {}
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                step = int(row.pop("step"))
                values = {k: float(v) for k, v in row.items() if v not in ("", None)}
                attempt.setdefault(step, {}).update(values)
        for step, values in attempt.items():
            merged[step] = {**merged.get(step, {}), **values}
    return dict(sorted(merged.items()))
