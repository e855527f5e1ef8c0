"""The frozen-encoder protocols (kNN and linear probe) on a loaded benchmark.

Classification benchmarks use one pooled embedding per window. Segmentation benchmarks use
per-patch embeddings (the encoder's feature map at the benchmark's patch size); a patch's
label is the majority class of its labelled pixels, and patches less than half labelled are
left out (as bench/pretrain_probe.py did). Predictions for every test patch are also kept as
a pixel map for the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from earthplat.eval.benchmarks import BenchmarkData
from earthplat.eval.embeddings import Embedder, embed_patches, embed_pooled
from earthplat.eval.knn import knn_predict
from earthplat.eval.linear_probe import LinearProbeConfig, fit_linear_probe


@dataclass
class Features:
    """Frozen features of every split, flattened to labelled units."""

    x: dict[str, np.ndarray]
    """split -> [n, D] features of labelled units."""
    y: dict[str, np.ndarray]
    """split -> [n] class index."""
    unit: str
    """``window`` or ``patch``."""
    test_all: np.ndarray | None = None
    """Segmentation: [N, h, w, D] features of every test patch (for prediction maps)."""


@dataclass
class Predictions:
    """A protocol's test predictions."""

    true: np.ndarray
    """[n] class index of the scored test units."""
    pred: np.ndarray
    """[n] predicted class index."""
    maps: np.ndarray | None = None
    """Segmentation: [N, H, W] predicted class per pixel of each test window."""
    settings: dict = field(default_factory=dict)


def patch_labels(labels: np.ndarray, patch: int, num_classes: int) -> np.ndarray:
    """[N, H, W] pixel classes (-1 = none) -> [N, H/p, W/p] majority class per patch, -1 where
    fewer than half the patch's pixels are labelled. Ties go to the lower class index."""
    n, h, w = labels.shape
    blocks = labels[:, : h // patch * patch, : w // patch * patch]
    blocks = blocks.reshape(n, h // patch, patch, w // patch, patch).transpose(0, 1, 3, 2, 4)
    blocks = blocks.reshape(n, h // patch, w // patch, patch * patch)
    counts = np.stack([(blocks == c).sum(-1) for c in range(num_classes)], axis=-1)
    out = counts.argmax(-1)
    out[counts.sum(-1) < patch * patch / 2] = -1
    return out


def extract_features(
    embedder: Embedder, data: BenchmarkData, *, patch_size: int | None = None, batch_size: int = 32
) -> Features:
    """Embed every split of ``data`` with the frozen encoder."""
    bench = data.benchmark
    p = patch_size or bench.patch_size
    if bench.task == "classification":
        x = {
            s: embed_pooled(embedder, data.samples[s], patch_size=p, batch_size=batch_size)
            for s in data.samples
        }
        return Features(x, dict(data.labels), "window")
    xs, ys, test_all = {}, {}, None
    for s in data.samples:
        fmap = embed_patches(embedder, data.samples[s], patch_size=p, batch_size=batch_size)
        fmap = fmap.transpose(0, 2, 3, 1)  # [N, h, w, D]
        lab = patch_labels(data.labels[s], p, len(data.classes))
        keep = lab >= 0
        xs[s], ys[s] = fmap[keep], lab[keep]
        if s == "test":
            test_all = fmap
    return Features(xs, ys, "patch", test_all)


def _train_set(feats: Features) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([feats.x["train"], feats.x["val"]]), np.concatenate(
        [feats.y["train"], feats.y["val"]]
    )


def _maps(feats: Features, predict, patch: int) -> np.ndarray | None:
    if feats.test_all is None:
        return None
    n, h, w, d = feats.test_all.shape
    pred = predict(feats.test_all.reshape(-1, d)).reshape(n, h, w)
    return pred.repeat(patch, axis=1).repeat(patch, axis=2)


def run_knn(
    feats: Features, num_classes: int, *, k: int = 20, temperature: float = 0.07, patch: int = 1
) -> Predictions:
    """kNN on train + val as the reference set, scored on test."""
    x, y = _train_set(feats)

    def predict(q: np.ndarray) -> np.ndarray:
        return knn_predict(x, y, q, k=k, temperature=temperature, num_classes=num_classes)

    pred = predict(feats.x["test"])
    maps = _maps(feats, predict, patch)
    settings = {"k": min(k, len(y)), "temperature": temperature, "similarity": "cosine"}
    return Predictions(feats.y["test"], pred, maps, settings)


def run_linear(
    feats: Features,
    num_classes: int,
    *,
    config: LinearProbeConfig | None = None,
    patch: int = 1,
) -> Predictions:
    """Linear probe: penalty chosen on val, refitted on train + val, scored on test."""
    cfg = config or LinearProbeConfig()
    probe = fit_linear_probe(
        feats.x["train"],
        feats.y["train"],
        feats.x["val"],
        feats.y["val"],
        num_classes=num_classes,
        config=cfg,
    )
    pred = probe.predict(feats.x["test"])
    settings = {
        "optimizer": "lbfgs",
        "weight_decay": probe.weight_decay,
        "val_accuracy": {str(k): round(v, 4) for k, v in probe.val_accuracy.items()},
        "seed": cfg.seed,
    }
    return Predictions(feats.y["test"], pred, _maps(feats, probe.predict, patch), settings)
