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


def run_worker(cmd: list[str], env: dict[str, str], cwd: str | Path, label: str) -> dict:
    """Run one benchmark worker process; its result is the JSON object on its last stdout line.

    A failing worker stops the benchmark with its stderr tail, named by ``label``."""
    import json
    import subprocess

    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    if out.returncode != 0 or not out.stdout.strip():
        raise SystemExit(f"{label} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.splitlines()[-1])
