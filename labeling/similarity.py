"""Similarity search over per-window embeddings: "find windows that look like this one".

The ``embeddings`` job writes one index directory per run::

    DIR/vectors.npy     float32 [N, D], one pooled encoder embedding per window
    DIR/windows.json    [{"id": window id, "name": window name}, ...] in row order
    DIR/index.json      model, layer, dimension, created (provenance)

(:func:`write_index`). Queries rank by cosine similarity and never return the query window
itself. Brute force over an ``[N, D]`` matrix: a project's windows (10^4-10^5 x a few hundred
dims) score in milliseconds, so no approximate index is needed at this scale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from earthplat.errors import DataError

VECTORS = "vectors.npy"
WINDOWS = "windows.json"
INFO = "index.json"


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


@dataclass
class Match:
    id: Any
    name: str
    score: float
    """Cosine similarity in [-1, 1]."""


class EmbeddingIndex:
    """Window embeddings (rows L2-normalised) with cosine top-k queries."""

    def __init__(self, vectors: np.ndarray, windows: list[dict[str, Any]], info=None) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(windows):
            raise DataError(
                f"an embedding index needs [N, D] vectors and N windows; got {vectors.shape} "
                f"and {len(windows)} windows"
            )
        if not np.isfinite(vectors).all():
            raise DataError("the embedding vectors hold NaN or inf; recompute the embeddings")
        self.vectors = _unit(vectors)
        self.windows = [dict(w) for w in windows]
        self.info = dict(info or {})
        self._by_id = {w.get("id"): i for i, w in enumerate(self.windows)}
        self._by_name = {w.get("name"): i for i, w in enumerate(self.windows)}

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def row(self, *, window_id: Any = None, name: str | None = None) -> int:
        key, table = (window_id, self._by_id) if window_id is not None else (name, self._by_name)
        if key not in table:
            raise KeyError(
                f"window {key!r} is not in the embedding index ({len(self)} windows); "
                "re-run the embeddings job after adding windows"
            )
        return table[key]

    def query_vector(self, vector: np.ndarray, k: int = 10, exclude: set[int] = frozenset()):
        """Top ``k`` matches of a raw vector, best first (rows in ``exclude`` skipped)."""
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise DataError(f"query has {q.shape[0]} dims, the index {self.dim}")
        scores = self.vectors @ (q / max(float(np.linalg.norm(q)), 1e-12))
        if exclude:
            scores[list(exclude)] = -np.inf
        k = max(0, min(k, len(self) - len(exclude)))
        if k == 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        # stable order: score descending, then row (ties between identical windows)
        top = sorted(top.tolist(), key=lambda i: (-float(scores[i]), i))
        return [
            Match(self.windows[i].get("id"), self.windows[i].get("name"), float(scores[i]))
            for i in top
        ]

    def query(self, *, window_id: Any = None, name: str | None = None, k: int = 10) -> list[Match]:
        """The ``k`` windows most similar to a window of the index, excluding itself."""
        r = self.row(window_id=window_id, name=name)
        return self.query_vector(self.vectors[r], k, exclude={r})

    # --- files ----------------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | Path) -> EmbeddingIndex:
        d = Path(directory)
        if not (d / VECTORS).is_file() or not (d / WINDOWS).is_file():
            raise DataError(
                f"{d} is not an embedding index (needs {VECTORS} and {WINDOWS}); run an "
                "embeddings job first"
            )
        info = json.loads((d / INFO).read_text()) if (d / INFO).is_file() else {}
        return cls(np.load(d / VECTORS), json.loads((d / WINDOWS).read_text()), info)


def write_index(
    directory: str | Path,
    vectors: np.ndarray,
    windows: list[dict[str, Any]],
    info: dict[str, Any] | None = None,
) -> Path:
    """Write an index directory (atomically per file; ``index.json`` last marks it complete)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    index = EmbeddingIndex(vectors, windows)  # validates
    tmp = d / (VECTORS + ".tmp.npy")
    np.save(tmp, np.asarray(vectors, dtype=np.float32))
    tmp.replace(d / VECTORS)
    (d / (WINDOWS + ".tmp")).write_text(json.dumps(index.windows))
    (d / (WINDOWS + ".tmp")).replace(d / WINDOWS)
    meta = {
        "count": len(index),
        "dim": index.dim,
        "created": datetime.now(UTC).isoformat(),
        **(info or {}),
    }
    (d / (INFO + ".tmp")).write_text(json.dumps(meta, default=str))
    (d / (INFO + ".tmp")).replace(d / INFO)
    return d


def latest_index(root: str | Path) -> Path | None:
    """The most recently completed index directory under ``root`` (by ``index.json`` time)."""
    root = Path(root)
    done = [p.parent for p in root.glob(f"*/{INFO}")] if root.is_dir() else []
    return max(done, key=lambda p: (p / INFO).stat().st_mtime_ns) if done else None
