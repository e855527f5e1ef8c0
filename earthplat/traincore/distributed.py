"""``run_distributed_test``: run a function on N ranks, each a fresh subprocess, like torchrun.

Each rank gets a scrubbed environment: the variables Lightning, torchrun and SLURM leave behind
(``LOCAL_RANK``, ``WORLD_SIZE``, ``PL_*`` ...) are removed, then the torchrun set is written for
that rank. Lightning's TorchElasticEnvironment recognises that set, so a Trainer built inside the
function joins the existing ranks instead of launching its own. The function must be importable
(defined at module level); its arguments and return value must pickle.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from earthplat.traincore.errors import DistributedTestError

_LEAKY_VARS = {
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
    "ROLE_RANK",
    "ROLE_WORLD_SIZE",
    "ROLE_NAME",
    "NODE_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "GROUP_WORLD_SIZE",
    "TORCH_NCCL_ASYNC_ERROR_HANDLING",
}
_LEAKY_PREFIXES = ("PL_", "TORCHELASTIC_", "SLURM_", "OMPI_", "PMI_", "PMIX_", "LSB_", "JSM_")


def clean_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: ``os.environ``) without any distributed-launch variables."""
    env = dict(os.environ if base is None else base)
    for key in list(env):
        if key in _LEAKY_VARS or key.startswith(_LEAKY_PREFIXES):
            del env[key]
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_environment(
    rank: int, world_size: int, port: int, threads: int, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = clean_environment()
    env.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "LOCAL_WORLD_SIZE": str(world_size),
            "GROUP_RANK": "0",
            "ROLE_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": str(threads),
            "PYTHONUNBUFFERED": "1",
            # the child must import what the parent imported the function from
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        }
    )
    env.update(extra or {})
    return env


def run_distributed_test(
    fn: Callable[..., Any],
    *args: Any,
    world_size: int = 2,
    backend: str = "gloo",
    timeout: float = 300.0,
    init_process_group: bool = True,
    threads_per_rank: int = 1,
    env: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> list[Any]:
    """Run ``fn(*args, **kwargs)`` on ``world_size`` ranks; return each rank's result in order.

    With ``init_process_group`` the default group is initialised (``backend``) before ``fn`` runs
    and destroyed after; Lightning reuses an initialised group. Raises ``DistributedTestError``
    with the failing ranks' tracebacks if any rank fails or the run exceeds ``timeout`` seconds.
    """
    if getattr(fn, "__module__", "__main__") == "__main__" or "<locals>" in fn.__qualname__:
        raise DistributedTestError(
            f"{fn.__qualname__} must be defined at module level in an importable module so "
            "each rank can import it"
        )
    with tempfile.TemporaryDirectory(prefix="traincore-dist-") as tmp:
        tmp_path = Path(tmp)
        payload = tmp_path / "payload.pkl"
        payload.write_bytes(pickle.dumps((fn, args, kwargs, backend, init_process_group)))
        port = free_port()
        procs = []
        for rank in range(world_size):
            log = open(tmp_path / f"rank{rank}.log", "wb")  # noqa: SIM115 - closed below
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "earthplat.traincore._distributed_worker",
                    str(payload),
                    str(tmp_path),
                ],
                env=rank_environment(rank, world_size, port, threads_per_rank, env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            procs.append((proc, log))
        deadline = time.monotonic() + timeout
        timed_out = False
        try:
            while True:
                codes = [proc.poll() for proc, _ in procs]
                if all(code == 0 for code in codes):
                    break
                if any(code not in (None, 0) for code in codes):
                    break  # one rank failed: the others may wait forever in a collective
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                time.sleep(0.02)
        finally:
            for proc, log in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                log.close()
        failures = []
        for rank, (proc, _) in enumerate(procs):
            failed_itself = (
                proc.returncode not in (0, -9) or (tmp_path / f"rank{rank}.err").exists()
            )
            if failed_itself or timed_out:
                err = tmp_path / f"rank{rank}.err"
                detail = err.read_text() if err.exists() else ""
                output = (tmp_path / f"rank{rank}.log").read_text(errors="replace")[-4000:]
                failures.append(
                    f"--- rank {rank} (exit {proc.returncode}) ---\n{detail}\n"
                    f"output tail:\n{output}"
                )
        if failures:
            reason = f"timed out after {timeout:.0f}s" if timed_out else "failed"
            raise DistributedTestError(
                f"{fn.__qualname__} {reason} on {world_size} ranks:\n" + "\n".join(failures)
            )
        return [
            pickle.loads((tmp_path / f"rank{r}.result").read_bytes()) for r in range(world_size)
        ]
