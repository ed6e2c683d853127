"""What an OHLCV target yields by construction: the same pipeline on random walks.

A null series keeps what is not signal (each ticker's return distribution and volatility
level, the bars' shapes, the volume distribution, the timestamps) and destroys the rest:
the order of the returns (each ticker's log returns permuted) and the link between volume
and price (volumes permuted separately). A target that is "predictable" on those series too
(``volatility_up`` compares future absolute returns with the last ones, which are features:
regression to the mean; ``vwap_reversion`` is geometry) is predictable by construction, and
only the real data's margin over it is an answer to "can I trade this?".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from termwise.data import ohlcv
from termwise.probes.models import PRIMARY
from termwise.probes.run import ProbeReport, ProbeSettings, probe_bars
from termwise.probes.verdict import fitted


def null_bars(raw: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A random walk shaped like ``raw`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    columns = {str(c).lower(): str(c) for c in raw.columns}
    out = raw.copy()
    close = raw[columns["close"]].to_numpy(dtype=float)
    shape = {n: raw[columns[n]].to_numpy(dtype=float) / close for n in ("open", "high", "low")}
    volume = raw[columns["volume"]].to_numpy(dtype=float)
    ticker = ohlcv.find_column(columns, ohlcv.TICKER_NAMES)
    keys = raw[ticker].astype(str).to_numpy() if ticker else np.zeros(len(raw), dtype=str)
    time = ohlcv.find_column(columns, ohlcv.TIME_NAMES)
    order = (
        np.lexsort((pd.to_datetime(raw[time]).to_numpy(), keys))
        if time
        else np.argsort(keys, kind="stable")
    )
    new_close, new_shape = close.copy(), {n: v.copy() for n, v in shape.items()}
    new_volume = volume.copy()
    for key in np.unique(keys):
        rows = order[keys[order] == key]
        returns = np.diff(np.log(close[rows]))
        moved = rng.permutation(len(returns))
        path = np.log(close[rows[0]]) + np.concatenate([[0.0], np.cumsum(returns[moved])])
        new_close[rows] = np.exp(path)
        for name in shape:  # a bar's shape travels with its return
            new_shape[name][rows[1:]] = shape[name][rows[1:][moved]]
        new_volume[rows] = volume[rows][rng.permutation(len(rows))]
    out[columns["close"]] = new_close
    for name, ratio in new_shape.items():
        out[columns[name]] = ratio * new_close
    out[columns["volume"]] = new_volume
    return out


def best_metric(report: ProbeReport) -> float:
    """The best held-out primary metric among the models that fit their training data."""
    metric = PRIMARY[report.target.kind]
    usable = [m for m in report.models if fitted(m, metric)] or report.models
    return max(m.test[metric].value for m in usable)


@dataclass
class Construction:
    """The real data's best metric against the same pipeline's on ``len(draws)`` null series."""

    metric: str
    real: float
    real_low: float
    draws: list[float] = field(default_factory=list)
    baseline: float = float("nan")
    margin: float = float("nan")
    beyond: bool = False
    statement: str = ""


def judge(report: ProbeReport, draws: list[float]) -> Construction:
    metric = PRIMARY[report.target.kind]
    usable = [m for m in report.models if fitted(m, metric)] or report.models
    best = max(usable, key=lambda m: m.test[metric].value)
    found = Construction(metric, best.test[metric].value, best.test[metric].low, draws)
    found.baseline = float(np.mean(draws))
    scale = 2.0 if metric == "auc" else 1.0  # like the ranking's lift: AUC gain ~ half a Gini
    found.margin = scale * (found.real - found.baseline)
    predictable = report.verdict.label in ("signal", "weak-signal")
    found.beyond = predictable and found.real_low > max(draws)
    if found.beyond:
        found.statement = (
            f"predictable beyond a random walk: {metric} {found.real:.3f} vs {found.baseline:.3f} "
            f"by construction (the real interval's low end {found.real_low:.3f} is above every "
            f"null draw, max {max(draws):.3f})"
        )
    elif predictable:
        found.statement = (
            f"predictable, but a random walk gives about the same: {metric} {found.real:.3f} vs "
            f"{found.baseline:.3f} by construction (null draws up to {max(draws):.3f})"
        )
    else:
        found.statement = (
            f"not predictable: {metric} {found.real:.3f}; a random walk gives {found.baseline:.3f}"
        )
    return found


def construction_baselines(
    frame: pd.DataFrame,
    path: str,
    targets: list[str],
    settings: ProbeSettings,
    draws: int,
    on_skip: Callable[[str, str], None] | None = None,
) -> dict[str, list[float]]:
    """Per target, the best metric the pipeline reaches on each of ``draws`` null series."""
    results: dict[str, list[float]] = {t: [] for t in targets}
    for draw in range(draws):
        bars = ohlcv.build(null_bars(frame, settings.seed + 1000 + draw), path)
        for name in targets:
            try:
                report, _ = probe_bars(bars, name, settings)
            except Exception as error:  # a degenerate null target: no baseline from this draw
                if on_skip is not None:
                    on_skip(name, str(error))
                continue
            value = best_metric(report)
            if np.isfinite(value):  # NaN: a metric undefined on this draw's test split
                results[name].append(value)
    return results
