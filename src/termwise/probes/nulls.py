"""Shuffled-label nulls and p-values.

The null of every probe is the same analysis on a shuffled target. Rows are exchangeable
only when they are independent; for time-ordered data a random permutation destroys the
target's autocorrelation and makes p-values too small, so there the target is instead
rotated by a random circular shift, which keeps its autocorrelation and breaks only its
alignment with the features.
"""

from __future__ import annotations

from collections.abc import Iterator

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


def iter_shuffles(
    n: int, count: int, seed: int, time_ordered: bool, chunk: int = 64
) -> Iterator[np.ndarray]:
    """:func:`shuffled_indices` in blocks of at most ``chunk`` rows, so a null of many
    thousand shuffles over many rows never holds all its row orders at once."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        yield shuffled_indices(n, size, int(rng.integers(2**63 - 1)), time_ordered)


def permutation_pvalue(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Right-tail p-values ``(k + 1) / (B + 1)`` of ``observed`` ([p]) against ``null``
    ([B, p]), where ``k`` null values reach the observed one.

    Exact for exchangeable rows whatever the statistic's distribution; the smallest value
    it can give is 1 / (B + 1), so a test that must survive a correction over many features
    needs many shuffles (the correlations get them; they are one matrix product each).
    """
    exceed = (null >= observed[None, :] - 1e-12).sum(axis=0)
    return np.asarray((exceed + 1) / (null.shape[0] + 1), dtype=float)


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
