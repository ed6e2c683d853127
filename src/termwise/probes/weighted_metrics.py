"""Metrics under row weights, vectorised over many weightings at once.

A bootstrap resample is a weighting of the rows (how often each was drawn), so every
resample's metric is one row of ``metric(W, ...)`` with ``W`` of shape [B, n]; the point
estimate is the same call with a single row of ones. This replaces B calls into
scikit-learn (about a millisecond each, mostly input checking) with a few array ops.
"""

from __future__ import annotations

import numpy as np


def bootstrap_weights(n: int, count: int, seed: int, block: int = 1) -> np.ndarray:
    """``[count, n]`` row multiplicities of ``count`` bootstrap resamples. ``block > 1``:
    a moving-block bootstrap for time-ordered rows (blocks of ``block`` consecutive rows,
    so autocorrelated neighbours are resampled together and the interval is not too narrow)."""
    rng = np.random.default_rng(seed)
    if block <= 1:
        draws = rng.integers(0, n, size=(count, n))
    else:
        block = min(block, n)
        starts = rng.integers(0, n - block + 1, size=(count, -(-n // block)))
        draws = (starts[..., None] + np.arange(block)).reshape(count, -1)[:, :n]
    return np.stack([np.bincount(row, minlength=n) for row in draws]).astype(float)


def block_length(n: int) -> int:
    """The usual moving-block length for ``n`` time-ordered rows: about ``n ** (1/3)``."""
    return max(1, round(n ** (1 / 3)))


def accuracy(w: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return (w @ (y == pred).astype(float)) / w.sum(axis=1)


def f1(
    w: np.ndarray, y: np.ndarray, pred: np.ndarray, classes: np.ndarray, binary: bool
) -> np.ndarray:
    """F1 of class ``classes[1]`` (binary) or the unweighted mean over classes (macro)."""
    targets = classes[1:2] if binary else classes
    scores = []
    for c in targets:
        tp = w @ ((pred == c) & (y == c)).astype(float)
        fp = w @ ((pred == c) & (y != c)).astype(float)
        fn = w @ ((pred != c) & (y == c)).astype(float)
        denominator = 2 * tp + fp + fn
        scores.append(np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0))
    return np.mean(scores, axis=0)


def binary_auc(w: np.ndarray, positive: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUC: P(score of a positive > score of a negative), ties 1/2."""
    values, inverse = np.unique(score, return_inverse=True)
    out = np.empty(len(w))
    for b, weights in enumerate(w):
        pos = np.bincount(inverse, weights=weights * positive, minlength=len(values))
        neg = np.bincount(inverse, weights=weights * ~positive, minlength=len(values))
        below = np.cumsum(neg) - neg  # negative weight strictly below each score value
        total = pos.sum() * neg.sum()
        out[b] = (pos @ (below + 0.5 * neg)) / total if total > 0 else np.nan
    return out


def auc(w: np.ndarray, y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Binary AUC, or the macro one-vs-rest AUC over classes."""
    if len(classes) == 2:
        return binary_auc(w, y == classes[1], proba[:, 1])
    return np.mean([binary_auc(w, y == c, proba[:, i]) for i, c in enumerate(classes)], axis=0)


def r2(w: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    total = w.sum(axis=1)
    mean = (w @ y) / total
    sse = w @ (y - pred) ** 2
    sst = (w * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
    return 1.0 - sse / np.maximum(sst, 1e-12)


def mae(w: np.ndarray, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return (w @ np.abs(y - pred)) / w.sum(axis=1)
