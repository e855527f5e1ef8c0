"""The embedding index: cosine top-k without the query window, files, and retrieval on real
EuroSAT patches."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from earthplat.errors import DataError
from labeling.similarity import EmbeddingIndex, latest_index, write_index


def _windows(n):
    return [{"id": i + 1, "name": f"w{i}"} for i in range(n)]


def test_top_k_is_cosine_order_without_the_query():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 16)).astype(np.float32)
    index = EmbeddingIndex(vectors * rng.uniform(0.1, 10, size=(50, 1)), _windows(50))  # scale
    got = index.query(window_id=7, k=5)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = unit @ unit[6]
    scores[6] = -np.inf
    expected = np.argsort(-scores)[:5]
    assert [m.id for m in got] == [int(i) + 1 for i in expected]
    assert all(m.id != 7 for m in index.query(window_id=7, k=49))
    assert [m.score for m in got] == sorted((m.score for m in got), reverse=True)
    assert got[0].score == pytest.approx(float(scores[expected[0]]), abs=1e-5)
    assert len(index.query(name="w3", k=100)) == 49  # k capped at the other windows


def test_duplicate_windows_rank_first_and_errors_are_clear():
    vectors = np.array([[1, 0], [0, 1], [1, 0.01], [-1, 0]], dtype=np.float32)
    index = EmbeddingIndex(vectors, _windows(4))
    assert [m.name for m in index.query(name="w0", k=3)] == ["w2", "w1", "w3"]
    with pytest.raises(KeyError, match="not in the embedding index"):
        index.query(window_id=99)
    with pytest.raises(DataError, match="NaN"):
        EmbeddingIndex(np.array([[np.nan, 1.0]]), _windows(1))
    with pytest.raises(DataError, match=r"\[N, D\]"):
        EmbeddingIndex(np.zeros((3, 2)), _windows(2))


def test_write_load_round_trip_and_latest(tmp_path):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(10, 8)).astype(np.float32)
    write_index(tmp_path / "a", vectors, _windows(10), {"model": "m1"})
    write_index(tmp_path / "b", vectors[::-1].copy(), _windows(10)[::-1], {"model": "m2"})
    assert latest_index(tmp_path) == tmp_path / "b"
    index = EmbeddingIndex.load(tmp_path / "a")
    assert index.info["model"] == "m1" and index.info["dim"] == 8 and len(index) == 10
    again = EmbeddingIndex.load(tmp_path / "b")
    assert [m.id for m in index.query(window_id=3)] == [m.id for m in again.query(window_id=3)]
    with pytest.raises(DataError, match="not an embedding index"):
        EmbeddingIndex.load(tmp_path / "missing")
    assert latest_index(tmp_path / "none") is None


def test_retrieval_on_real_eurosat_patches_beats_chance(shared_data):
    """Embeddings = per-band mean and spread of real EuroSAT S2 patches (log-scaled); the nearest
    neighbours of a patch share its land-use class far more often than chance (10 %)."""
    import rasterio

    root = shared_data / "real" / "eurosat_ms_subset"
    if not root.is_dir():
        pytest.skip(f"missing component: {root}")
    rows = list(csv.DictReader((root / "labels.csv").open()))
    vectors, windows = [], []
    for r in rows:
        with rasterio.open(root / r["path"]) as src:
            x = np.log1p(src.read().astype(np.float32).reshape(13, -1))
        vectors.append(np.concatenate([x.mean(1), x.std(1)]))
        windows.append({"id": r["path"], "name": r["class_name"]})
    vectors = np.stack(vectors)
    vectors = (vectors - vectors.mean(0)) / vectors.std(0)  # standardise features
    index = EmbeddingIndex(vectors, windows)
    hits = total = 0
    for w in windows:
        for m in index.query(window_id=w["id"], k=5):
            assert m.id != w["id"]
            hits += m.name == w["name"]
            total += 1
    assert hits / total > 0.4, hits / total
