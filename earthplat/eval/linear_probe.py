"""Linear probe: a softmax classifier on frozen, standardised embeddings.

Full-batch L-BFGS (strong Wolfe line search) on cross-entropy plus an L2 penalty on the
weights. The penalty is chosen on a validation split from ``weight_decays``; the probe is then
refitted with it on train + validation and scored on the test split. Seeded: the same inputs
give the same probe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LinearProbeConfig:
    """How the probe is fitted."""

    weight_decays: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)
    """Candidate L2 penalties (on the mean loss); the best on validation accuracy wins, ties go
    to the stronger penalty."""
    max_iter: int = 200
    """L-BFGS iterations per fit."""
    seed: int = 0
    """Seeds the head's initialisation."""

    def __post_init__(self) -> None:
        self.weight_decays = tuple(float(w) for w in self.weight_decays)
        if not self.weight_decays or min(self.weight_decays) < 0:
            raise ValueError("weight_decays must be a non-empty list of non-negative numbers")


@dataclass
class LinearProbe:
    """A fitted probe: standardisation statistics and the linear head."""

    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray
    """[K, D]"""
    bias: np.ndarray
    """[K]"""
    weight_decay: float
    val_accuracy: dict[float, float] = field(default_factory=dict)
    """Validation accuracy per candidate penalty (empty without a validation split)."""

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float32) - self.mean) / self.std
        return z @ self.weight.T + self.bias

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x).argmax(1).astype(np.int64)


def _fit(x: np.ndarray, y: np.ndarray, classes: int, wd: float, cfg: LinearProbeConfig):
    import torch

    threads = torch.get_num_threads()
    # L-BFGS on a probe-sized problem is latency-bound: one thread is 10-20x faster than
    # several contending ones on a shared CPU
    torch.set_num_threads(1)
    try:
        return _fit_head(x, y, classes, wd, cfg)
    finally:
        torch.set_num_threads(threads)


def _fit_head(x: np.ndarray, y: np.ndarray, classes: int, wd: float, cfg: LinearProbeConfig):
    import torch

    torch.manual_seed(cfg.seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    head = torch.nn.Linear(xt.shape[1], classes)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=cfg.max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(xt), yt) + wd * head.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head.weight.detach().numpy().copy(), head.bias.detach().numpy().copy()


def fit_linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray | None = None,
    val_y: np.ndarray | None = None,
    *,
    num_classes: int | None = None,
    config: LinearProbeConfig | None = None,
) -> LinearProbe:
    """Fit a probe. With a validation split the penalty is chosen on it and the final probe is
    refitted on train + validation; without one the first candidate is used."""
    cfg = config or LinearProbeConfig()
    train_x = np.asarray(train_x, dtype=np.float32)
    train_y = np.asarray(train_y, dtype=np.int64)
    has_val = val_x is not None and val_y is not None and len(val_y) > 0
    classes = int(num_classes or max(train_y.max(), val_y.max() if has_val else 0) + 1)

    def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x.mean(0), x.std(0) + 1e-6

    val_acc: dict[float, float] = {}
    chosen = cfg.weight_decays[0]
    if has_val and len(cfg.weight_decays) > 1:
        mean, std = standardise(train_x)
        zt, zv = (train_x - mean) / std, (np.asarray(val_x, dtype=np.float32) - mean) / std
        for wd in cfg.weight_decays:
            w, b = _fit(zt, train_y, classes, wd, cfg)
            val_acc[wd] = float(((zv @ w.T + b).argmax(1) == np.asarray(val_y)).mean())
        best = max(val_acc.values())
        chosen = max(wd for wd, acc in val_acc.items() if acc == best)
    if has_val:
        train_x = np.concatenate([train_x, np.asarray(val_x, dtype=np.float32)])
        train_y = np.concatenate([train_y, np.asarray(val_y, dtype=np.int64)])
    mean, std = standardise(train_x)
    w, b = _fit((train_x - mean) / std, train_y, classes, chosen, cfg)
    return LinearProbe(mean, std, w, b, chosen, val_acc)
