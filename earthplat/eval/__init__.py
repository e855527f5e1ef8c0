"""Evaluation of encoders and task models on named benchmarks: kNN, linear probe, fine-tuning.

    from earthplat.eval import evaluate_model
    report = evaluate_model("random:nano", ["eurosat"], ["knn", "linear"], "out/")

Names resolve lazily: ``import earthplat.eval`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "evaluate_model": "earthplat.eval.evaluate",
    "PROTOCOLS": "earthplat.eval.evaluate",
    "EvalReport": "earthplat.eval.report",
    "EvalResult": "earthplat.eval.report",
    "BENCHMARKS": "earthplat.eval.benchmarks",
    "Benchmark": "earthplat.eval.benchmarks",
    "BenchmarkData": "earthplat.eval.benchmarks",
    "load_benchmark": "earthplat.eval.benchmarks",
    "Embedder": "earthplat.eval.embeddings",
    "load_embedder": "earthplat.eval.embeddings",
    "embed_pooled": "earthplat.eval.embeddings",
    "embed_patches": "earthplat.eval.embeddings",
    "knn_predict": "earthplat.eval.knn",
    "LinearProbeConfig": "earthplat.eval.linear_probe",
    "fit_linear_probe": "earthplat.eval.linear_probe",
    "confusion_matrix": "earthplat.eval.metrics",
    "scores": "earthplat.eval.metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'earthplat.eval' has no attribute {name!r}")
