"""kNN: exact answers on hand-made embeddings."""

import numpy as np
import pytest

from earthplat.eval.knn import knn_predict


def clusters(seed: int, n: int = 30, classes: int = 3, spread: float = 0.05):
    rng = np.random.default_rng(seed)
    centres = np.eye(classes, 8) * 5.0  # orthogonal directions: cosine separates them
    y = np.repeat(np.arange(classes), n)
    x = centres[y] + rng.normal(0, spread, (len(y), 8))
    return x.astype(np.float32), y


def test_separable_clusters_are_classified_exactly():
    x, y = clusters(0)
    q, qy = clusters(1)
    pred = knn_predict(x, y, q, k=20)
    assert (pred == qy).mean() == 1.0
    assert pred.dtype == np.int64


def test_similarity_is_cosine_not_euclidean():
    # a long vector along class 1's direction is far in L2 but identical in angle
    x = np.array([[1, 0], [0, 1]], dtype=np.float32)
    pred = knn_predict(x, np.array([0, 1]), np.array([[0.0, 100.0], [3.0, 0.1]]), k=1)
    assert pred.tolist() == [1, 0]


def test_k_and_temperature_decide_between_nearest_and_majority():
    # one class-0 point right at the query, three class-1 points slightly further away
    x = np.array([[1.0, 0.0], [0.9, 0.44], [0.9, -0.44], [0.85, 0.5]], dtype=np.float32)
    y = np.array([0, 1, 1, 1])
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    assert knn_predict(x, y, q, k=1).tolist() == [0]
    # k=4: a near-zero temperature lets the closest neighbour win the weighted vote...
    assert knn_predict(x, y, q, k=4, temperature=0.01).tolist() == [0]
    # ...a large one makes it a plain majority vote
    assert knn_predict(x, y, q, k=4, temperature=100.0).tolist() == [1]


def test_k_larger_than_training_set_and_num_classes():
    x, y = clusters(0, n=2)
    pred = knn_predict(x, y, x, k=500, temperature=0.01, num_classes=5)
    assert (pred == y).all()


def test_chunks_do_not_change_the_answer():
    x, y = clusters(2, spread=2.0)
    q, _ = clusters(3, spread=2.0)
    assert (knn_predict(x, y, q, chunk=7) == knn_predict(x, y, q)).all()


@pytest.mark.parametrize("kw", [{"k": 0}, {"temperature": 0.0}])
def test_bad_settings_are_refused(kw):
    x, y = clusters(0, n=2)
    with pytest.raises(ValueError):
        knn_predict(x, y, x, **kw)
