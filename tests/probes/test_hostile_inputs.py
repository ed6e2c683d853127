"""A probe given data it cannot answer about says why in one line (exit 2), never a
traceback, and never a verdict flipped by a silently dropped column."""

import numpy as np
import pandas as pd
import pytest

from tests.cli.test_cli import assert_one_line_exit_2, run_main

N = 120


def _frame(y, **extra):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=N), "b": rng.normal(size=N), "y": y, **extra})


def _bars(volume=1000.0, close=None, rows=N):
    rng = np.random.default_rng(1)
    price = close if close is not None else 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    price = np.broadcast_to(price, rows)
    return pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=rows, freq="D"),
            "open": price,
            "high": price * 1.01,
            "low": price * 0.99,
            "close": price,
            "volume": volume,
        }
    )


def _stray():
    frame = _frame(np.arange(N) % 2).astype({"a": object})
    frame.loc[17, "a"] = "n/a?"
    return frame


CASES = {
    "constant target": (lambda: _frame(np.zeros(N)), [], "is constant (every row is 0.0)"),
    "one positive": (
        lambda: _frame(np.eye(1, N, 5).ravel().astype(int)),
        [],
        "1 of 2 classes have fewer than 5 rows: 1 (1 rows)",
    ),
    "100 classes": (
        lambda: _frame(np.arange(N) % 100),
        ["--task", "classification"],
        "classes have fewer than 5 rows",
    ),
    "target as feature": (lambda: _frame(np.arange(N) % 2), ["--features", "a,y"], "cannot also"),
    "header only": (lambda: pd.DataFrame(columns=["a", "y"]), [], "no data rows"),
    "stray text cell": (_stray, [], "a: column is numeric except 1 cell(s), first in data row 18"),
    "zero volume": (lambda: _bars(volume=0.0), ["--ohlcv"], "volume is 0 on every bar"),
    "flat prices": (lambda: _bars(close=100.0), ["--ohlcv"], "close price never changes"),
    "too few bars": (lambda: _bars(rows=15), ["--ohlcv"], "no OHLCV target could be probed"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_is_one_line(case, tmp_path, monkeypatch, capsys):
    make, flags, message = CASES[case]
    path = tmp_path / "t.csv"
    make().to_csv(path, index=False)
    target = [] if "--ohlcv" in flags else ["--target", "y"]
    code, err = run_main(
        monkeypatch, capsys, "probe", str(path), *target, *flags, "--permutations", "100"
    )
    assert_one_line_exit_2(code, err, message, "t.csv")
