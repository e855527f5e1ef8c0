"""The trivial baseline every report carries: per-band mean and standard deviation of the
valid pixels, classified with k-NN and with logistic regression (the linear probe).

If an encoder does not beat 2 numbers per band, the report should say so at once. Window
tasks describe each window by its bands' mean and std over every valid pixel of every period;
segmentation describes each patch (the benchmark's patch size) the same way, and scores patches
by their majority class as the frozen protocols do. Features are standardised with the training
statistics before k-NN (cosine similarity on raw means would compare brightness only).
"""

from __future__ import annotations

import numpy as np

from earthplat.eval.benchmarks import BenchmarkData
from earthplat.eval.frozen import Features, patch_labels

PROTOCOLS = ("baseline_knn", "baseline_logreg")


def _stats(data: np.ndarray, valid: np.ndarray, patch: int | None) -> np.ndarray:
    """[T, C, H, W] values, [T, H, W] validity -> [2C] (window) or [h, w, 2C] (patches)."""
    t, c, h, w = data.shape
    if patch is None:
        ok = np.broadcast_to(valid[:, None], data.shape)
        n = max(int(ok[:, 0].sum()), 1)
        mean = np.where(ok, data, 0).sum((0, 2, 3)) / n
        var = np.where(ok, (data - mean[None, :, None, None]) ** 2, 0).sum((0, 2, 3)) / n
        return np.concatenate([mean, np.sqrt(var)]).astype(np.float32)
    gh, gw = h // patch, w // patch
    d = data[:, :, : gh * patch, : gw * patch].reshape(t, c, gh, patch, gw, patch)
    v = valid[:, : gh * patch, : gw * patch].reshape(t, 1, gh, patch, gw, patch)
    v = np.broadcast_to(v, d.shape)
    n = np.maximum(v.sum((0, 3, 5)), 1)  # [C, gh, gw]
    mean = np.where(v, d, 0).sum((0, 3, 5)) / n
    var = np.where(v, (d - mean[None, :, :, None, :, None]) ** 2, 0).sum((0, 3, 5)) / n
    return np.concatenate([mean, np.sqrt(var)]).transpose(1, 2, 0).astype(np.float32)


def band_stat_features(data: BenchmarkData) -> Features:
    """Per split, the band-statistics features of the labelled units (like
    ``frozen.extract_features``)."""
    bench = data.benchmark
    patch = bench.patch_size if bench.task == "segmentation" else None
    xs, ys, test_all = {}, {}, None
    for split, samples in data.samples.items():
        feats = []
        for s in samples:
            parts = [_stats(m.data, m.valid, patch) for _, m in sorted(s.modalities.items())]
            feats.append(np.concatenate(parts, axis=-1))
        x = np.stack(feats) if feats else np.zeros((0, 1), np.float32)
        if patch is None:
            xs[split], ys[split] = x, data.labels[split]
            continue
        lab = patch_labels(data.labels[split], patch, len(data.classes))
        keep = lab >= 0
        xs[split], ys[split] = x[keep], lab[keep]
        if split == "test":
            test_all = x
    train = np.concatenate([xs["train"], xs["val"]])
    mean, std = train.mean(0), train.std(0) + 1e-6
    xs = {k: (v - mean) / std for k, v in xs.items()}
    if test_all is not None:
        test_all = (test_all - mean) / std
    return Features(xs, ys, "window" if patch is None else "patch", test_all)
