"""Features and candidate targets from OHLCV bars (open, high, low, close, volume).

Features (known at the bar's close): log returns over 1, 5 and 10 bars, distance to the
running VWAP, the bar's range, and a volume z-score. Targets at horizons 1, 5 and 10 bars:

* ``vwap_reversion_h``: the price is closer to the current VWAP h bars later;
* ``direction_h``: the close h bars later is higher;
* ``volatility_up_h``: the mean absolute return over the next h bars exceeds that of the
  last h bars;
* ``volume_surge_h``: the mean volume over the next h bars exceeds 1.5 x the mean of the
  last 20 bars;
* ``vwap_move_h`` (regression): the signed move towards the VWAP, as a fraction of price.

Everything is computed within a ticker, and VWAP and targets within a session (a
calendar day, for intraday bars), so no feature or target spans two series. Rows without
enough history or future are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from termwise.errors import TermwiseUserError

HORIZONS = (1, 5, 10)
LAGS = (1, 5, 10)
WINDOW = 20  # bars of history for rolling statistics (and the daily VWAP)
TARGETS = ("vwap_reversion", "direction", "volatility_up", "volume_surge", "vwap_move")
FEATURES = ("ret_1", "ret_5", "ret_10", "vwap_distance", "range", "volume_z")
TIME_NAMES = ("timestamp", "datetime", "date", "time")
TICKER_NAMES = ("ticker", "symbol", "session")


@dataclass
class OhlcvFrame:
    """Bars with features, targets, the time of each row and when each target is known."""

    frame: pd.DataFrame
    intraday: bool
    grouping: str


def find_column(columns: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((columns[n] for n in names if n in columns), None)


def build(raw: pd.DataFrame, path: str, option: str = "--ohlcv") -> OhlcvFrame:
    """Features and targets from OHLCV bars; ``option`` is how the caller's user asked for
    them (a flag, a config key), for the error when a column is missing."""
    columns = {str(c).lower(): str(c) for c in raw.columns}
    missing = [n for n in ("open", "high", "low", "close", "volume") if n not in columns]
    if missing:
        raise TermwiseUserError(
            f"{option} needs columns open, high, low, close, volume "
            f"(any case); missing {', '.join(missing)}",
            path=path,
        )
    frame = pd.DataFrame(
        {
            n: pd.to_numeric(raw[columns[n]], errors="coerce")
            for n in ("open", "high", "low", "close", "volume")
        }
    )
    bad = frame.isna().any(axis=1) | (frame[["open", "high", "low", "close"]] <= 0).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise TermwiseUserError(
            f"non-numeric or non-positive price/volume in data row {row + 1}", path=path
        )
    if (frame["volume"] == 0).all():
        raise TermwiseUserError(
            "volume is 0 on every bar: VWAP and the volume features are undefined", path=path
        )
    if frame["close"].nunique() == 1:
        raise TermwiseUserError("the close price never changes: nothing to predict", path=path)
    time_col = find_column(columns, TIME_NAMES)
    frame["time"] = (
        pd.to_datetime(raw[time_col])
        if time_col is not None
        else pd.Series(pd.RangeIndex(len(raw)))
    )
    ticker_col = find_column(columns, TICKER_NAMES)
    frame["ticker"] = raw[ticker_col].astype(str) if ticker_col is not None else "all"
    intraday = time_col is not None and bool((frame["time"].dt.normalize() != frame["time"]).any())
    frame["session"] = (
        frame["ticker"] + "|" + frame["time"].dt.date.astype(str) if intraday else frame["ticker"]
    )
    frame = frame.sort_values(["ticker", "time"], kind="stable").reset_index(drop=True)
    _add_features(frame, intraday)
    _add_targets(frame)
    grouping = "ticker and session (calendar day)" if intraday else "ticker"
    return OhlcvFrame(frame, intraday, grouping)


def _add_features(frame: pd.DataFrame, intraday: bool) -> None:
    by_ticker = frame.groupby("ticker", sort=False)
    log_close = np.log(frame["close"])
    for lag in LAGS:
        frame[f"ret_{lag}"] = log_close - by_ticker["close"].shift(lag).pipe(np.log)
    typical = (frame["high"] + frame["low"] + frame["close"]) / 3
    traded = typical * frame["volume"]
    if intraday:  # the running VWAP of the session
        by_session = frame.groupby("session", sort=False)
        vwap = traded.groupby(frame["session"]).cumsum() / by_session["volume"].cumsum()
    else:  # daily bars: VWAP of the last WINDOW bars
        vwap = traded.groupby(frame["ticker"]).transform(
            lambda s: s.rolling(WINDOW).sum()
        ) / frame.groupby("ticker")["volume"].transform(lambda s: s.rolling(WINDOW).sum())
    frame["vwap"] = vwap.replace(0, np.nan)
    frame["vwap_distance"] = frame["close"] / frame["vwap"] - 1
    frame["range"] = (frame["high"] - frame["low"]) / frame["close"]
    mean = by_ticker["volume"].transform(lambda s: s.rolling(WINDOW).mean())
    sd = by_ticker["volume"].transform(lambda s: s.rolling(WINDOW).std())
    frame["volume_z"] = (frame["volume"] - mean) / sd.replace(0, np.nan)
    frame["volume_mean"] = mean


def _future_mean(series: pd.Series, groups: pd.Series, h: int) -> pd.Series:
    """Mean of the next h values (t+1 .. t+h) within each group."""
    return series.groupby(groups).transform(lambda s: s[::-1].rolling(h).mean()[::-1].shift(-1))


def _past_mean(series: pd.Series, groups: pd.Series, h: int) -> pd.Series:
    """Mean of the last h values (t-h+1 .. t) within each group."""
    return series.groupby(groups).transform(lambda s: s.rolling(h).mean())


def _add_targets(frame: pd.DataFrame) -> None:
    session = frame["session"]
    abs_ret = frame["ret_1"].abs()
    for h in HORIZONS:
        future_close = frame.groupby("session")["close"].shift(-h)
        known = future_close.notna()
        gap_now = (frame["close"] - frame["vwap"]).abs()
        gap_then = (future_close - frame["vwap"]).abs()
        frame[f"vwap_reversion_{h}"] = (gap_then < gap_now).where(known)
        frame[f"direction_{h}"] = (future_close > frame["close"]).where(known)
        future_vol = _future_mean(abs_ret, session, h)
        past_vol = _past_mean(abs_ret, session, h)
        frame[f"volatility_up_{h}"] = (future_vol > past_vol).where(
            future_vol.notna() & past_vol.notna()
        )
        future_volume = _future_mean(frame["volume"], session, h)
        frame[f"volume_surge_{h}"] = (future_volume > 1.5 * frame["volume_mean"]).where(
            future_volume.notna() & frame["volume_mean"].notna()
        )
        side = np.sign(frame["close"] - frame["vwap"])
        frame[f"vwap_move_{h}"] = (frame["close"] - future_close) * side / frame["close"]
        frame[f"known_at_{h}"] = frame.groupby("session")["time"].shift(-h)


def target_names() -> list[str]:
    return [f"{t}_{h}" for t in TARGETS for h in HORIZONS]


@dataclass
class TargetData:
    """One target's rows: features, target, row time, when the target is known, series."""

    x: np.ndarray
    y: np.ndarray
    times: np.ndarray
    known_at: np.ndarray
    groups: np.ndarray
    dropped: int


def target_arrays(bars: OhlcvFrame, target: str) -> TargetData:
    """Features and ``target`` for every bar that has both; rows lacking any are dropped
    (and counted): the first bars of a series have no history, the last no future."""
    h = int(target.rsplit("_", 1)[1])
    columns = [*FEATURES, target, "time", f"known_at_{h}", "ticker"]
    subset = bars.frame[columns].replace([np.inf, -np.inf], np.nan)
    usable = subset.notna().all(axis=1)
    subset = subset[usable]
    values = subset[target].to_numpy()
    y = values.astype(float) if target.startswith("vwap_move") else values.astype(bool)
    return TargetData(
        x=subset[list(FEATURES)].to_numpy(dtype=float),
        y=y,
        times=_nanoseconds(subset["time"]),
        known_at=_nanoseconds(subset[f"known_at_{h}"]),
        groups=subset["ticker"].astype(str).to_numpy(),
        dropped=int((~usable).sum()),
    )


def _nanoseconds(times: pd.Series) -> np.ndarray:
    return times.to_numpy().astype("datetime64[ns]").astype(np.int64).astype(float)
