"""Simulated OHLCV bars with a known answer: a geometric random walk (nothing to predict by
construction), optionally with AR(1) returns (a planted, known-size direction effect)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulated_bars(seed: int, rows: int = 1500, ar: float = 0.0, vol: float = 0.01) -> pd.DataFrame:
    """Daily bars: log returns ``r_t = ar * r_{t-1} + e_t`` (e iid normal), bar shapes and
    volumes iid, so with ``ar = 0`` no target is tradeable."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, vol, rows)
    returns = np.zeros(rows)
    for t in range(1, rows):
        returns[t] = ar * returns[t - 1] + noise[t]
    close = 100.0 * np.exp(np.cumsum(returns))
    opening = close * np.exp(rng.normal(0.0, vol / 5, rows))
    high = np.maximum(close, opening) * (1 + np.abs(rng.normal(0.0, vol / 3, rows)))
    low = np.minimum(close, opening) * (1 - np.abs(rng.normal(0.0, vol / 3, rows)))
    return pd.DataFrame(
        {
            "date": pd.date_range("2000-01-03", periods=rows, freq="D"),
            "open": opening,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.lognormal(10.0, 0.5, rows),
        }
    )
