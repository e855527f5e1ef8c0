"""Linear probe: learns separable features, stays at chance on shuffled labels, is seeded."""

import numpy as np
import pytest

from earthplat.eval.linear_probe import LinearProbeConfig, fit_linear_probe


def gaussian_classes(seed: int, n: int, classes: int = 4, dim: int = 16, shift: float = 3.0):
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(99).normal(0, shift, (classes, dim))
    y = rng.integers(0, classes, n)
    # a large offset and scale: the probe must standardise to converge
    x = (means[y] + rng.normal(0, 1, (n, dim))) * 50 + 1000
    return x.astype(np.float32), y


def test_separable_features_are_learned():
    x, y = gaussian_classes(0, 200)
    vx, vy = gaussian_classes(1, 60)
    tx, ty = gaussian_classes(2, 200)
    probe = fit_linear_probe(x, y, vx, vy)
    assert (probe.predict(tx) == ty).mean() >= 0.95
    assert set(probe.val_accuracy) == set(LinearProbeConfig().weight_decays)
    assert probe.weight_decay in probe.val_accuracy


def test_shuffled_labels_give_chance():
    x, y = gaussian_classes(0, 300)
    tx, ty = gaussian_classes(2, 400)
    rng = np.random.default_rng(5)
    probe = fit_linear_probe(x, rng.permutation(y), num_classes=4)
    acc = (probe.predict(tx) == ty).mean()
    assert acc < 0.4  # chance is 0.25; the true labels give >= 0.95


def test_weight_decay_is_chosen_on_validation():
    x, y = gaussian_classes(0, 40, dim=64, shift=0.3)  # few, noisy, high-dimensional
    vx, vy = gaussian_classes(1, 200, dim=64, shift=0.3)
    cfg = LinearProbeConfig(weight_decays=(0.0, 10.0))
    probe = fit_linear_probe(x, y, vx, vy, config=cfg)
    best = max(probe.val_accuracy.values())
    assert probe.val_accuracy[probe.weight_decay] == best
    # an enormous penalty shrinks the weights towards zero
    strong = fit_linear_probe(x, y, config=LinearProbeConfig(weight_decays=(10.0,)))
    weak = fit_linear_probe(x, y, config=LinearProbeConfig(weight_decays=(0.0,)))
    assert np.abs(strong.weight).sum() < 0.1 * np.abs(weak.weight).sum()


def test_seeded_and_deterministic():
    x, y = gaussian_classes(0, 80)
    a = fit_linear_probe(x, y, config=LinearProbeConfig(weight_decays=(1e-3,), seed=3))
    b = fit_linear_probe(x, y, config=LinearProbeConfig(weight_decays=(1e-3,), seed=3))
    np.testing.assert_array_equal(a.weight, b.weight)


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        LinearProbeConfig(weight_decays=())
