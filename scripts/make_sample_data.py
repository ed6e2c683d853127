"""Cut the bundled samples under data/ from the full datasets in ../shared/data.

    .venv/bin/python scripts/make_sample_data.py [--source ../shared/data]

Deterministic (seeded) so re-running gives the same files. Attribution and licences are in
data/README.md; keep it in step when changing what is cut here.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import defaultdict
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
CORPUS_ROWS = 60
PREFERENCE_ROWS = {"train": 100, "dev": 30}  # per category
DAILY_ROWS_PER_TICKER = 400
SEQUENCE_ARTICLES = 4


def read_jsonl(path: Path) -> list[dict[str, object]]:
    with path.open("rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))


def sample(rows: list[dict[str, object]], count: int, seed: str) -> list[dict[str, object]]:
    """``count`` rows in their original order (a seeded choice of positions)."""
    if len(rows) <= count:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), count))
    return [rows[i] for i in keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    out = ROOT / "data"
    for path in sorted((args.source / "corpora").glob("*.jsonl")):
        write_jsonl(out / "corpora" / path.name, sample(read_jsonl(path), CORPUS_ROWS, path.name))
    for split, per_category in PREFERENCE_ROWS.items():
        by_category: dict[str, list[dict[str, object]]] = defaultdict(list)
        for row in read_jsonl(args.source / "preferences" / f"{split}.jsonl"):
            by_category[str(row["category"])].append(row)
        rows = [r for c in sorted(by_category) for r in sample(by_category[c], per_category, c)]
        write_jsonl(out / "preferences" / f"{split}.jsonl", rows)
    for path in sorted((args.source / "sequences").glob("*.jsonl")):
        write_jsonl(
            out / "sequences" / path.name, sample(read_jsonl(path), SEQUENCE_ARTICLES, path.name)
        )
    series = out / "timeseries"
    series.mkdir(parents=True, exist_ok=True)
    intraday = args.source / "timeseries" / "sp500_intraday_1min.csv"
    (series / intraday.name).write_bytes(intraday.read_bytes())
    with (args.source / "timeseries" / "stocks_daily.csv").open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        per_ticker: dict[str, list[list[str]]] = defaultdict(list)
        for row in reader:
            per_ticker[row[0]].append(row)
    with (series / "stocks_daily.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for ticker in per_ticker:  # source order; the latest rows of each ticker
            writer.writerows(per_ticker[ticker][-DAILY_ROWS_PER_TICKER:])


if __name__ == "__main__":
    main()
