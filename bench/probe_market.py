"""The OHLCV probe on the real market data, with the construction baseline.

    python bench/probe_market.py --data-dir ../shared/data [--draws 3] [--write]

Runs ``termwise probe FILE --ohlcv --null-draws N --json`` on the intraday and the daily
file and writes the two ranking tables (margin over what a random walk gives) to
docs/probes.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from _doc import DOCS, publish

MARK = "<!-- probe_market -->"
FILES = {
    "Intraday S&P 500, 1-minute bars": "timeseries/sp500_intraday_1min.csv",
    "Daily stocks (AAPL, FB, GOOG, IBM)": "timeseries/stocks_daily.csv",
}


def _number(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _top(values: list[Any]) -> float | None:
    finite = [v for v in values if v is not None]
    return max(finite) if finite else None


def table(reports: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| rank | target | verdict | best test (interval low) | random walk gives | margin | "
        "beyond a random walk |",
        "|---|---|---|---|---|---|---|",
    ]
    for rank, report in enumerate(reports, start=1):
        c = report.get("construction") or {}
        real = c.get("real")
        cell = "-" if real is None else f"{real:.3f} (low {_number(c['real_low'], '.3f')})"
        metric = c.get("metric", "")
        lines.append(
            f"| {rank} | {report['target_name']} | {report['verdict']['label']} | "
            f"{metric} {cell} | "
            + (
                "-"
                if not c
                else f"{_number(c['baseline'], '.3f')} (max {_number(_top(c['draws']), '.3f')})"
            )
            + " | "
            + ("-" if not c else _number(c["margin"], "+.3f"))
            + " | "
            + ("-" if not c else ("yes" if c["beyond"] else "no"))
            + " |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update docs/probes.md")
    args = parser.parse_args()
    termwise = Path(sys.executable).with_name("termwise")
    lines = [
        "### Market data with the construction baseline",
        "",
        f"`python bench/probe_market.py --data-dir {args.data_dir} --draws {args.draws}"
        f"{' --write' if args.write else ''}`: for each file, `termwise probe FILE --ohlcv "
        f'--null-draws {args.draws} --json`. "random walk gives": the same pipeline\'s best '
        "held-out metric on random walks shaped like the file (each ticker's returns permuted, "
        "volumes permuted separately), mean and max of the draws; margin: 2 x the AUC gain "
        "(R^2 gain for vwap_move). Ranked by the margin, beyond-a-random-walk targets first.",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        for title, name in FILES.items():
            out = Path(scratch) / "report.json"
            started = time.perf_counter()
            command = [
                str(termwise),
                "probe",
                str(args.data_dir / name),
                "--ohlcv",
                "--null-draws",
                str(args.draws),
                "--json",
                str(out),
            ]
            subprocess.run(command, check=True, capture_output=True)
            minutes = (time.perf_counter() - started) / 60
            reports = orjson.loads(out.read_bytes())
            lines += ["", f"#### {title} ({minutes:.1f} min)", "", *table(reports)]
    publish(MARK, lines, args.write, DOCS / "probes.md")


if __name__ == "__main__":
    main()
