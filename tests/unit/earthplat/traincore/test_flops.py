import torch

from earthplat.traincore import flops
from earthplat.traincore.callbacks.throughput import precision_dtype


def test_cpu_peak_is_measured_once_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("EARTHPLAT_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_measure(dtype=torch.float32, size=1024, seconds=1.0):
        calls.append(dtype)
        return 1.5e11

    monkeypatch.setattr(flops, "measure_cpu_matmul_flops", fake_measure)
    assert flops.cpu_peak_flops() == 1.5e11
    assert flops.cpu_peak_flops() == 1.5e11
    assert calls == [torch.float32]
    assert flops.cpu_peak_flops(torch.bfloat16) == 1.5e11  # another dtype: its own entry
    assert len(calls) == 2
    flops.cpu_peak_flops(refresh=True)
    assert len(calls) == 3


def test_measured_peak_is_plausible():
    peak = flops.measure_cpu_matmul_flops(size=256, seconds=0.2)
    assert 1e8 < peak < 1e14


def test_precision_dtypes():
    assert precision_dtype("bf16-mixed") == torch.bfloat16
    assert precision_dtype("16-mixed") == torch.float16
    assert precision_dtype("32-true") == torch.float32
