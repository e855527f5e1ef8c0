"""Classification metrics from a confusion matrix (numpy only)."""

from __future__ import annotations

import numpy as np


def confusion_matrix(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """[K, K] int64 counts, rows = true class, columns = predicted class."""
    true, pred = np.asarray(true).ravel(), np.asarray(pred).ravel()
    keep = (true >= 0) & (true < num_classes)
    flat = true[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def scores(cm: np.ndarray) -> dict[str, float]:
    """Accuracy, macro F1 and mean IoU over the classes present in the truth (rows with counts);
    classes never seen in the test set do not dilute the means."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    true_n, pred_n = cm.sum(1), cm.sum(0)
    present = true_n > 0
    total = cm.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(true_n + pred_n > 0, 2 * tp / (true_n + pred_n), 0.0)
        iou = np.where(true_n + pred_n - tp > 0, tp / (true_n + pred_n - tp), 0.0)
    return {
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "miou": float(iou[present].mean()) if present.any() else float("nan"),
    }


def per_class(cm: np.ndarray, labels: list[str]) -> dict[str, dict[str, float]]:
    """Per class: F1, IoU, precision, recall and support (true count) from a confusion matrix;
    classes without support or predictions get NaN where the ratio is undefined."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    true_n, pred_n = cm.sum(1), cm.sum(0)
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / pred_n
        recall = tp / true_n
        f1 = 2 * tp / (true_n + pred_n)
        iou = tp / (true_n + pred_n - tp)
    for i, name in enumerate(labels):
        out[name] = {
            "f1": float(f1[i]),
            "iou": float(iou[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "support": int(true_n[i]),
        }
    return out
