import numpy as np
import orjson
import pandas as pd
from typer.testing import CliRunner

from termwise.cli import app

runner = CliRunner()


def test_probe_end_to_end_writes_json(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"])
    frame["day"] = np.arange(400)
    frame["y"] = (frame["a"] + rng.normal(size=400) > 0).astype(int)
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "report.json"
    result = runner.invoke(
        app,
        [
            "probe",
            str(data),
            "--target",
            "y",
            "--time-col",
            "day",
            "--permutations",
            "100",
            "--json",
            str(out),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "Verdict: signal" in result.output
    report = orjson.loads(out.read_bytes())
    assert report["verdict"]["label"] == "signal"
    assert report["split"].startswith("chronological")
    assert {f["name"] for f in report["features"]} == {"a", "b", "c"}


def test_probe_ohlcv_ranks_targets(tmp_path):
    out = tmp_path / "ranking.json"
    result = runner.invoke(
        app,
        [
            "probe",
            "data/timeseries/sp500_intraday_1min.csv",
            "--ohlcv",
            "--target",
            "direction_5",
            "--permutations",
            "100",
            "--json",
            str(out),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "Targets ranked" in result.output
    assert orjson.loads(out.read_bytes())["target_name"] == "direction_5"


def test_probe_user_errors_exit_2(tmp_path, monkeypatch, capsys):
    from termwise.cli import main

    data = tmp_path / "t.csv"
    pd.DataFrame({"a": range(30), "y": [0, 1] * 15}).to_csv(data, index=False)
    for args, expected in (
        (["--target", "yy"], "did you mean 'y'"),
        (["--ohlcv"], "--ohlcv needs columns"),
        ([], "--target is required"),
    ):
        monkeypatch.setattr("sys.argv", ["termwise", "probe", str(data), *args])
        try:
            main()
        except SystemExit as exit_:
            assert exit_.code == 2
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1
