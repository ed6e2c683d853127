"""Train/test splits that respect time order and groups."""

from __future__ import annotations

import numpy as np


def chronological_split(
    times: np.ndarray, test_fraction: float, label_end: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Earlier rows train, later rows test; no look-ahead.

    Every row at the boundary time goes to test, so the latest training time is strictly
    before the earliest test time. ``label_end`` (the time a row's target is known, e.g.
    ``t + horizon``) purges training rows whose target reaches into the test period.
    """
    order = np.argsort(times, kind="stable")
    boundary = times[order[int(len(times) * (1 - test_fraction))]]
    test = np.flatnonzero(times >= boundary)
    train_mask = times < boundary
    if label_end is not None:
        train_mask &= label_end < boundary
    return np.flatnonzero(train_mask), test


def group_split(
    groups: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Whole groups go to one side: no group is in both train and test."""
    names = np.unique(groups)
    rng = np.random.default_rng(seed)
    shuffled = names[rng.permutation(len(names))]
    n_test = max(1, int(round(len(names) * test_fraction)))
    test_groups = set(shuffled[:n_test].tolist())
    in_test = np.array([g in test_groups for g in groups.tolist()])
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def random_split(
    size: int, test_fraction: float, seed: int, strata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split, stratified by ``strata`` (class labels) when given."""
    rng = np.random.default_rng(seed)
    if strata is None:
        order = rng.permutation(size)
        n_test = int(size * test_fraction)
        return np.sort(order[n_test:]), np.sort(order[:n_test])
    test_parts = []
    for value in np.unique(strata):
        rows = np.flatnonzero(strata == value)
        rows = rows[rng.permutation(len(rows))]
        test_parts.append(rows[: int(round(len(rows) * test_fraction))])
    test = np.sort(np.concatenate(test_parts))
    train = np.setdiff1d(np.arange(size), test)
    return train, test


def make_split(
    size: int,
    test_fraction: float,
    seed: int,
    times: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    strata: np.ndarray | None = None,
    label_end: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """The split the columns allow, and a sentence saying which it is."""
    if times is not None:
        train, test = chronological_split(times, test_fraction, label_end)
        how = "chronological (earlier rows train, later rows test)"
        if groups is not None:
            test_groups = set(groups[test].tolist())
            train = train[[g not in test_groups for g in groups[train].tolist()]]
            how += ", training rows of groups seen in test removed"
        return train, test, how
    if groups is not None:
        train, test = group_split(groups, test_fraction, seed)
        return train, test, "by group (no group on both sides)"
    train, test = random_split(size, test_fraction, seed, strata)
    return train, test, "random" + (" stratified by class" if strata is not None else "")
