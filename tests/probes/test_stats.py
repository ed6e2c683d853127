import numpy as np
import pytest
from sklearn.feature_selection import mutual_info_classif
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score, roc_auc_score

from termwise.probes import weighted_metrics as wm
from termwise.probes.mutual_info import jitter, mutual_info_discrete
from termwise.probes.nulls import (
    benjamini_hochberg,
    iter_shuffles,
    permutation_pvalue,
    shuffled_indices,
)


def test_benjamini_hochberg_matches_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    # sorted: 0.01*4/1=0.04, 0.03*4/2=0.06, 0.04*4/3=0.0533 -> monotone 0.0533, 0.5*4/4=0.5
    assert benjamini_hochberg(p).tolist() == pytest.approx([0.04, 0.05333, 0.05333, 0.5], rel=1e-3)


def test_permutation_pvalue_counts():
    null = np.arange(100, dtype=float)[:, None]  # 0..99
    assert permutation_pvalue(np.array([50.0]), null)[0] == pytest.approx(51 / 101)
    assert permutation_pvalue(np.array([1000.0]), null)[0] == pytest.approx(1 / 101)


def test_iter_shuffles_blocks():
    blocks = list(iter_shuffles(30, 100, seed=0, time_ordered=False, chunk=64))
    assert [len(b) for b in blocks] == [64, 36]
    assert all(sorted(order) == list(range(30)) for b in blocks for order in b)


def test_shuffles_are_permutations_or_circular_shifts():
    orders = shuffled_indices(50, 5, seed=0, time_ordered=False)
    assert all(sorted(o) == list(range(50)) for o in orders)
    shifts = shuffled_indices(50, 5, seed=0, time_ordered=True)
    for order in shifts:
        assert sorted(order) == list(range(50))
        assert set(np.diff(order) % 50) == {1}  # consecutive rows stay consecutive


def test_weighted_metrics_match_sklearn_at_unit_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    score = rng.random(300) + 0.3 * y
    pred = (score > 0.6).astype(int)
    ones = np.ones((1, 300))
    classes = np.array([0, 1])
    assert wm.accuracy(ones, y, pred)[0] == pytest.approx(accuracy_score(y, pred))
    assert wm.f1(ones, y, pred, classes, True)[0] == pytest.approx(f1_score(y, pred))
    proba = np.c_[1 - score, score]
    assert wm.auc(ones, y, proba, classes)[0] == pytest.approx(roc_auc_score(y, score))
    y3 = rng.integers(0, 3, 300)
    pred3 = rng.integers(0, 3, 300)
    assert wm.f1(ones, y3, pred3, np.arange(3), False)[0] == pytest.approx(
        f1_score(y3, pred3, average="macro")
    )
    target, guess = rng.normal(size=300), rng.normal(size=300)
    assert wm.r2(ones, target, guess)[0] == pytest.approx(r2_score(target, guess))
    assert wm.mae(ones, target, guess)[0] == pytest.approx(mean_absolute_error(target, guess))


def test_bootstrap_weights_equal_resampling():
    rng = np.random.default_rng(1)
    y, pred = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
    weights = wm.bootstrap_weights(50, 3, seed=4)
    draws = np.random.default_rng(4).integers(0, 50, size=(3, 50))
    for w, rows in zip(weights, draws, strict=True):
        assert wm.accuracy(w[None], y, pred)[0] == pytest.approx(
            accuracy_score(y[rows], pred[rows])
        )


def test_mutual_info_matches_scikit_learn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 3))
    labels = (x[:, 0] + 0.5 * rng.normal(size=800) > 0).astype(int)
    labels[x[:, 1] > 1.2] = 2
    reference = mutual_info_classif(x, labels, random_state=0)
    scaled = jitter(x, 0)
    ours = [mutual_info_discrete(scaled[:, j], labels) for j in range(3)]
    assert ours == pytest.approx(reference, abs=0.01)
    assert ours[0] > 0.2 and ours[2] < 0.05  # kNN MI of an independent feature: near 0
