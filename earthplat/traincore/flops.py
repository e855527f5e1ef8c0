"""Peak FLOP/s of the device a run uses, for model-FLOPs utilisation (MFU).

On GPUs the peak comes from Lightning's table of published dense peaks per chip and dtype. CPUs
have no such table, so the peak is measured once with a large matmul at the current thread count
and cached on disk, keyed by CPU model, thread count and dtype.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch


def _cache_path() -> Path:
    root = os.environ.get("EARTHPLAT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "earthplat"
    )
    return Path(root) / "cpu_peak_flops.json"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure_cpu_matmul_flops(
    dtype: torch.dtype = torch.float32, size: int = 1024, seconds: float = 1.0
) -> float:
    """Best achieved FLOP/s of an ``size``x``size`` matmul over ~``seconds`` (after warmup)."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    for _ in range(3):
        torch.mm(a, b)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        torch.mm(a, b)
        dt = time.perf_counter() - t0
        best = max(best, 2.0 * size**3 / dt)
    return best


def cpu_peak_flops(dtype: torch.dtype = torch.float32, *, refresh: bool = False) -> float:
    """The cached measured CPU peak for this machine, thread count and dtype.

    ``refresh`` measures again and keeps the higher of the two: a peak measured while the
    machine was busy is too low (and the MFU it gives too high), never too high."""
    key = f"{_cpu_model()}|threads={torch.get_num_threads()}|{dtype}"
    path = _cache_path()
    cache: dict[str, float] = {}
    if path.exists():
        try:
            cache = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            cache = {}
    if key in cache and not refresh:
        return float(cache[key])
    peak = measure_cpu_matmul_flops(dtype)
    if refresh and key in cache:
        peak = max(peak, float(cache[key]))
    cache[key] = peak
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only home only costs a re-measurement next time
    return peak


def device_peak_flops(device: torch.device, dtype: torch.dtype = torch.float32) -> float | None:
    """Peak dense FLOP/s for ``device`` at ``dtype``: the GPU table, or the measured CPU peak."""
    if device.type == "cpu":
        return cpu_peak_flops(dtype)
    from lightning.fabric.utilities.throughput import get_available_flops

    return get_available_flops(device, dtype)
