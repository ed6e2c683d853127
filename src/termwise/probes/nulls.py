"""Shuffled-label nulls and p-values.

The null of every probe is the same analysis on a shuffled target. Rows are exchangeable
only when they are independent; for time-ordered data a random permutation destroys the
target's autocorrelation and makes p-values too small, so there the target is instead
rotated by a random circular shift, which keeps its autocorrelation and breaks only its
alignment with the features.
"""

from __future__ import annotations

import math

import numpy as np


def shuffled_indices(n: int, count: int, seed: int, time_ordered: bool) -> np.ndarray:
    """``count`` x ``n`` row orders: permutations, or circular shifts for time-ordered rows."""
    rng = np.random.default_rng(seed)
    if not time_ordered or n < 20:
        return np.argsort(rng.random((count, n)), axis=1)
    # Shifts of at least 5 % of the series, so a shifted target is never nearly aligned.
    low = max(1, n // 20)
    shifts = rng.integers(low, n - low + 1, size=count)
    return (np.arange(n)[None, :] + shifts[:, None]) % n


def permutation_pvalue(observed: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right-tail p-values of ``observed`` (shape [p]) against ``null`` (shape [B, p]).

    ``(k + 1) / (B + 1)`` where ``k`` null values reach the observed one. With few
    exceedances (k < 10) that count cannot resolve small p-values (never below
    1 / (B + 1)), which multiple-testing correction needs; there the normal tail of the
    null (its mean and sd) is used instead, capped at the count-based value. Returns the
    p-values and a boolean mask of where the tail approximation was used.
    """
    count = null.shape[0]
    exceed = (null >= observed[None, :] - 1e-12).sum(axis=0)
    p_count = (exceed + 1) / (count + 1)
    mean, sd = null.mean(axis=0), null.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (observed - mean) / sd
    tail = np.array([0.5 * math.erfc(v / math.sqrt(2)) if np.isfinite(v) else 1.0 for v in z])
    use_tail = (exceed < 10) & np.isfinite(z) & (sd > 0)
    p = np.where(use_tail, np.minimum(np.maximum(tail, 1e-300), p_count), p_count)
    return p, use_tail


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values): reject at level a where q <= a."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(adjusted, 1.0)
    return q
