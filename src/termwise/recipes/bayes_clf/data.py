"""Sequences for the Bayesian classifier: rows -> per-series windows -> chronological split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from termwise.data.splits import chronological_split
from termwise.data.windows import WindowDataset, window_ends
from termwise.errors import TermwiseUserError, suggest
from termwise.recipes.bayes_clf.config import BayesDataConfig

CONFIG_KEYS = {
    "--target": "data.target",
    "--features": "data.features",
    "--time-col": "data.time_col",
    "--group-col": "data.group_col",
}


@dataclass
class Sequences:
    train: WindowDataset
    test: WindowDataset
    classes: list[str]
    n_features: int


def load_sequences(config: BayesDataConfig, seed: int) -> Sequences:
    """Rows -> per-series windows -> chronological split (purged when targets look ahead)."""
    from termwise.data import ohlcv
    from termwise.data.tabular import read_table, select

    frame = read_table(config.path)
    label_end = None
    if config.ohlcv:
        names = ohlcv.target_names()
        if config.target not in names:
            raise TermwiseUserError(
                f"unknown OHLCV target {config.target!r}{suggest(config.target, names)}",
                path=config.path,
                field="data.target",
            )
        rows = ohlcv.target_arrays(
            ohlcv.build(frame, str(config.path), "data.ohlcv: true"), config.target
        )
        x, y, times, groups, label_end = rows.x, rows.y, rows.times, rows.groups, rows.known_at
    else:
        try:
            table = select(
                frame,
                config.path,
                config.target,
                config.features,
                config.time_col,
                config.group_col,
            )
        except TermwiseUserError as error:  # name the config key, not the probe's flag
            field = CONFIG_KEYS.get(error.field or "", error.field)
            raise TermwiseUserError(error.reason, path=config.path, field=field) from None
        x, y = table.x, table.y
        times = table.times if table.times is not None else np.arange(len(y), dtype=float)
        groups = table.groups if table.groups is not None else np.zeros(len(y), dtype=str)
    order = np.lexsort((times, groups))
    x, y, times, groups = x[order], y[order], times[order], groups[order]
    label_end = None if label_end is None else label_end[order]
    classes, codes = np.unique(y, return_inverse=True)
    ends = window_ends(groups, config.window)
    if not len(ends):
        longest = int(np.unique(groups, return_counts=True)[1].max()) if len(groups) else 0
        raise TermwiseUserError(
            f"window {config.window} is longer than every series (the longest has "
            f"{longest} usable rows)",
            path=config.path,
            field="data.window",
        )
    train_pos, test_pos = chronological_split(
        times[ends], config.test_fraction, None if label_end is None else label_end[ends]
    )
    train_ends, test_ends = ends[train_pos], ends[test_pos]
    if not len(train_ends) or not len(test_ends):
        raise TermwiseUserError(
            f"{len(ends)} windows are too few to split into training and test periods",
            path=config.path,
            field="data.window",
        )
    # Standardise with training statistics only (no peeking at the test period).
    mean, std = x[train_ends].mean(axis=0), x[train_ends].std(axis=0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    return Sequences(
        WindowDataset(x, codes, train_ends, config.window),
        WindowDataset(x, codes, test_ends, config.window),
        [str(c) for c in classes],
        x.shape[1],
    )
