"""k-nearest-neighbour classification of embeddings: cosine similarity, temperature-weighted
votes, as in DINO and OlmoEarth's kNN evaluation.

Each of the ``k`` most similar training embeddings votes for its class with weight
``exp(similarity / temperature)``; a small temperature approaches a similarity-ordered vote,
a large one a plain majority vote among the ``k``.
"""

from __future__ import annotations

import numpy as np


def knn_predict(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk: int = 4096,
) -> np.ndarray:
    """Class index per test row ([M] int64) from ``train_x`` [N, D] with labels ``train_y`` [N].

    ``k`` is capped at N. Ties in the vote go to the lower class index. Test rows are scored
    in chunks of ``chunk`` so a large per-patch set never holds an [M, N] matrix at once.
    """
    import torch

    if len(train_x) == 0:
        raise ValueError("kNN needs at least one training embedding")
    if k < 1 or temperature <= 0:
        raise ValueError(f"k must be >= 1 and temperature > 0, got k={k}, T={temperature}")
    train = torch.nn.functional.normalize(torch.as_tensor(train_x, dtype=torch.float32), dim=1)
    labels = torch.as_tensor(np.asarray(train_y), dtype=torch.long)
    classes = int(num_classes if num_classes is not None else labels.max() + 1)
    out = []
    for start in range(0, len(test_x), chunk):
        block = torch.as_tensor(test_x[start : start + chunk], dtype=torch.float32)
        sim = torch.nn.functional.normalize(block, dim=1) @ train.T  # [m, N]
        top, idx = sim.topk(min(k, train.shape[0]), dim=1)
        votes = torch.zeros(block.shape[0], classes, dtype=torch.float64)
        # subtract the row max before exp: same argmax, no overflow for small temperatures
        weights = ((top - top[:, :1]) / temperature).double().exp()
        votes.scatter_add_(1, labels[idx], weights)
        out.append(votes.argmax(1))
    if not out:
        return np.zeros(0, dtype=np.int64)
    return torch.cat(out).numpy().astype(np.int64)
