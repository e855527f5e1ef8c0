"""Shared by the benchmarks: print a result table and keep it under bench/results/."""

from __future__ import annotations

from pathlib import Path


def publish(lines: list[str], out: str | Path) -> str:
    """Print ``lines`` and write them to ``out`` (parents created)."""
    text = "\n".join(lines)
    print(text)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return text
