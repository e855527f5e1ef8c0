"""A training process killed with SIGKILL and restarted ends where an uninterrupted one does."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from earthplat.traincore.distributed import clean_environment
from earthplat.traincore.metrics import read_metrics

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _start(run_dir: Path, *extra: str) -> subprocess.Popen:
    env = clean_environment() | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.helpers.train_script",
            "--run-dir",
            str(run_dir),
            "--steps",
            "30",
            "--every",
            "5",
            *extra,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(
                f"process ended before {path} appeared:\n"
                + proc.stdout.read().decode(errors="replace")[-3000:]
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


def test_sigkill_mid_run_then_restart_matches_uninterrupted(tmp_path):
    straight = _start(tmp_path / "straight")
    out, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, out.decode(errors="replace")[-3000:]

    run = tmp_path / "killed"
    proc = _start(run, "--sleep", "0.15")
    _wait_for(run / "checkpoints" / "step=00000010.ckpt", proc)
    time.sleep(0.4)  # a few steps past the checkpoint: work that must be redone
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "final.safetensors").exists()  # it really died mid-run

    restarted = _start(run)
    out, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, out.decode(errors="replace")[-3000:]
    assert b"resuming from" in out

    ref, got = (
        load_file(tmp_path / "straight" / "final.safetensors"),
        load_file(run / "final.safetensors"),
    )
    assert ref.keys() == got.keys()
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-5, atol=1e-6, msg=name)

    def losses(d):
        return {s: m["train/loss"] for s, m in read_metrics(d).items() if "train/loss" in m}

    a, b = losses(tmp_path / "straight"), losses(run)
    assert sorted(a) == sorted(b) == list(range(30))
    assert [b[s] for s in sorted(b)] == pytest.approx([a[s] for s in sorted(a)], rel=1e-5)
