import numpy as np
import pandas as pd
import pytest

from termwise.data import ohlcv
from termwise.data.tabular import read_table, select
from termwise.errors import TermwiseUserError


def write_csv(tmp_path, frame, name="t.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_reads_csv_parquet_jsonl(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]})
    frame.to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.jsonl").write_text('{"a": 1.0, "y": 0}\n{"a": 2.0, "y": 1}\n')
    for name in ("t.parquet", "t.jsonl"):
        assert read_table(tmp_path / name).equals(frame)
    assert read_table(write_csv(tmp_path, frame)).equals(frame)


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(TermwiseUserError, match=r"t.jsonl:2: invalid JSON"):
        read_table(path)


def test_column_errors_suggest_and_missing_values_are_counted(tmp_path):
    frame = pd.DataFrame(
        {
            "feat": [1.0, np.nan] + [float(i) for i in range(30)],
            "label": [0, 1] * 16,
            "name": ["x"] * 32,
        }
    )
    path = write_csv(tmp_path, frame)
    with pytest.raises(TermwiseUserError, match="did you mean 'label'"):
        select(frame, path, "labl")
    with pytest.raises(TermwiseUserError, match=r"feat: missing or infinite value \(data row 2\)"):
        select(frame, path, "label")
    with pytest.raises(TermwiseUserError, match="name: feature is not numeric"):
        select(frame, path, "label", features=["name"])
    table = select(frame, path, "label", on_missing="drop")
    assert table.dropped_rows == 1 and table.features == ["feat"] and len(table.y) == 31


def bars(n=60, days=2):
    times = pd.date_range("2024-01-02 09:30", periods=n, freq="min")
    times = times.append(pd.date_range("2024-01-03 09:30", periods=n, freq="min"))[: n * days]
    close = 100 + np.cumsum(np.sin(np.arange(len(times)) / 3.0))
    return pd.DataFrame(
        {
            "Date": times,
            "Open": close,
            "High": close + 1,
            "Low": close - 1,
            "Close": close,
            "Volume": np.arange(len(times)) % 7 + 1.0,
        }
    )


def test_ohlcv_features_and_targets_stay_within_a_session():
    frame = ohlcv.build(bars(), "bars.csv")
    assert frame.intraday
    f = frame.frame
    first_of_day2 = f.index[f["time"] == pd.Timestamp("2024-01-03 09:30")][0]
    # VWAP restarts each session: on the first bar it is that bar's typical price.
    assert f.loc[first_of_day2, "vwap"] == pytest.approx(f.loc[first_of_day2, "close"])
    # The last bar of a session has no 1-bar-ahead target; the one before does.
    last_of_day1 = first_of_day2 - 1
    assert np.isnan(f.loc[last_of_day1, "direction_1"])
    expected = f.loc[last_of_day1, "close"] > f.loc[last_of_day1 - 1, "close"]
    assert f.loc[last_of_day1 - 1, "direction_1"] == expected
    move = f.loc[10, "vwap_move_5"]
    side = np.sign(f.loc[10, "close"] - f.loc[10, "vwap"])
    assert move == pytest.approx(
        (f.loc[10, "close"] - f.loc[15, "close"]) * side / f.loc[10, "close"]
    )
    rows = ohlcv.target_arrays(frame, "direction_5")
    assert rows.x.shape[1] == len(ohlcv.FEATURES) and rows.dropped > 0
    assert (rows.known_at > rows.times).all() and set(np.unique(rows.y)) <= {False, True}


def test_ohlcv_needs_price_columns(tmp_path):
    with pytest.raises(TermwiseUserError, match="missing volume"):
        ohlcv.build(bars().drop(columns=["Volume"]), "bars.csv")
    broken = bars()
    broken.loc[5, "Close"] = -1
    with pytest.raises(TermwiseUserError, match="data row 6"):
        ohlcv.build(broken, "bars.csv")


def test_a_bad_byte_is_reported_at_its_line(tmp_path):
    from termwise.data.tabular import read_table
    from termwise.errors import TermwiseUserError

    path = tmp_path / "t.csv"
    path.write_bytes(b"a,y\n1,caf\xe9\n")
    with pytest.raises(
        TermwiseUserError, match=r"t.csv:2: not UTF-8 text \(byte 0xe9 at column 6\)"
    ):
        read_table(path)


def test_a_short_csv_row_is_named_as_such(tmp_path):
    from termwise.data.tabular import read_table
    from termwise.errors import TermwiseUserError

    path = tmp_path / "t.csv"
    path.write_text('a,b,y\n1,"two\nlines",0\n4,5\n')  # a quoted field spans lines 2 and 3
    with pytest.raises(TermwiseUserError, match="t.csv:4: 2 field.s., the header has 3"):
        read_table(path)
