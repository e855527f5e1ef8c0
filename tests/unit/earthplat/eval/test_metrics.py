"""Confusion matrix and scores, by hand."""

import numpy as np
import pytest

from earthplat.eval.frozen import patch_labels
from earthplat.eval.metrics import confusion_matrix, scores


def test_confusion_and_scores_by_hand():
    true = np.array([0, 0, 1, 1, 1, 2, -1])  # -1 = ignored
    pred = np.array([0, 1, 1, 1, 0, 2, 2])
    cm = confusion_matrix(true, pred, 4)
    assert cm.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    s = scores(cm)
    assert s["accuracy"] == pytest.approx(4 / 6)
    # class 3 never occurs in the truth: it does not dilute the means
    assert s["miou"] == pytest.approx((1 / 3 + 2 / 4 + 1) / 3)
    assert s["macro_f1"] == pytest.approx((2 / 4 + 4 / 6 + 1) / 3)


def test_patch_labels_majority_and_ignore():
    lab = -np.ones((1, 4, 4), dtype=np.int64)
    lab[0, :2, :2] = [[1, 1], [1, 0]]  # majority 1
    lab[0, :2, 2:] = [[0, -1], [-1, -1]]  # 1 of 4 labelled: ignored
    lab[0, 2:, :2] = [[0, 1], [-1, -1]]  # tie: the lower class
    lab[0, 2:, 2:] = 2
    assert patch_labels(lab, 2, 3).tolist() == [[[1, -1], [0, 2]]]
