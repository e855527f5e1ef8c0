"""Evaluation figures (matplotlib, Agg backend): confusion matrices and prediction maps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from earthplat.data.dataset import Dataset
    from earthplat.data.window import Window


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def true_color(dataset: Dataset, window: Window, layer: str = "s2") -> np.ndarray:
    """[H, W, 3] float in 0..1: the sensor's ``true_color`` composite of the layer's period with
    the most valid pixels (black where invalid); grey from the first band without one."""
    from earthplat.data.layer import read_layer_arrays
    from earthplat.sensors import get_modality

    ld = read_layer_arrays(dataset, window, layer)
    modality = get_modality(ld.metadata["modality"])
    t = int(ld.valid.reshape(ld.valid.shape[0], -1).sum(1).argmax())
    comps = {c.name: c for c in modality.composites}
    comp = comps.get("true_color")
    if comp is not None and all(b in ld.bands for b in comp.bands):
        order = [ld.bands.index(b) for b in comp.bands]
        rgb = ld.data[t, order].astype(np.float32)  # [3, H, W]
        lo = np.array([r[0] for r in comp.ranges], dtype=np.float32)[:, None, None]
        hi = np.array([r[1] for r in comp.ranges], dtype=np.float32)[:, None, None]
    else:  # no natural-colour composite (SAR, maps): the first band in grey, 2-98 % stretch
        band = ld.data[t, 0].astype(np.float32)
        ok = ld.valid[t] & np.isfinite(band)
        lo_v, hi_v = np.percentile(band[ok], [2, 98]) if ok.any() else (0.0, 1.0)
        rgb = np.repeat(band[None], 3, axis=0)
        lo = np.full((3, 1, 1), lo_v, np.float32)
        hi = np.full((3, 1, 1), max(hi_v, lo_v + 1e-6), np.float32)
    rgb = np.clip((rgb - lo) / (hi - lo), 0, 1) * ld.valid[t][None]
    return rgb.transpose(1, 2, 0)


def confusion_png(cm: np.ndarray, labels: list[str], path: str | Path, title: str) -> Path:
    """Row-normalised confusion matrix with the raw counts written in the cells."""
    plt = _pyplot()
    cm = np.asarray(cm)
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    size = max(4.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9), layout="constrained")
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                color = "white" if norm[i, j] > 0.5 else "black"
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def chips_png(
    images: list[np.ndarray],
    true: np.ndarray,
    pred: np.ndarray,
    labels: list[str],
    path: str | Path,
    title: str,
    cols: int = 6,
) -> Path:
    """A grid of test chips titled ``true -> predicted`` (green when right, red when wrong)."""
    plt = _pyplot()
    n = len(images)
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.2 * rows + 0.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (img, t, p) in enumerate(zip(images, true, pred, strict=True)):
        ax = axes.ravel()[i]
        ax.imshow(img)
        ax.set_title(f"{labels[t]}\n-> {labels[p]}", fontsize=7, color="green" if t == p else "red")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def segmentation_png(
    images: list[np.ndarray],
    truth: list[np.ndarray],
    preds: list[np.ndarray],
    classes: list[dict],
    path: str | Path,
    title: str,
) -> Path:
    """One row per window: true-colour image | label | prediction (-1 = no label, white)."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    cmap = ListedColormap(["#ffffff"] + [c["color"] for c in classes])
    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n + 0.8), squeeze=False)
    for r, (img, lab, pr) in enumerate(zip(images, truth, preds, strict=True)):
        for c, (arr, name) in enumerate(((img, "image"), (lab, "label"), (pr, "prediction"))):
            ax = axes[r, c]
            if c == 0:
                ax.imshow(arr)
            else:
                ax.imshow(arr + 1, cmap=cmap, vmin=0, vmax=len(classes), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
    handles = [Patch(color=c["color"], label=c["label"]) for c in classes]
    fig.legend(handles=handles, loc="lower center", ncol=min(5, len(classes)), fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)
