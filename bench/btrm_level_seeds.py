"""The score level on three seeds: a summary of `bench/btrm_vs_baselines.py` runs (seed S
trained into runs/btrm-levelS; its regression and level fitted with the current code by
`--evaluate-only --refit-after-training`, printed into runs/btrm-relevelS.log), written
into docs/btrm.md.

    python bench/btrm_level_seeds.py [--write]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from _doc import DOCS, publish

MARK = "<!-- btrm_level_seeds -->"
HEADS = ("fiction", "news", "learned", "government", "reviews", "multiturn_dialogue", "glossary")
HEAD_ROW = re.compile(rf"\| ({'|'.join(HEADS)}) \| [-0-9.]+ \| [-0-9.]+ \|")
SUMMARY = re.compile(
    r"mean AUC: btrm ([0-9.]+), fastText ([0-9.]+), TF-IDF ([0-9.]+); the model is behind "
    r"either baseline by more than 0.005 on (\d+) pairs"
)


def seed_row(seed: int, log: Path, run: Path) -> str | None:
    """One table row from a run's log, or None when the run has not finished."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    rows = [line for line in text.splitlines() if HEAD_ROW.match(line)][: len(HEADS)]
    summary = SUMMARY.search(text)
    if len(rows) < len(HEADS) or summary is None:
        return None
    positives = ", ".join(row.split("|")[2].strip() for row in rows)
    negatives = [float(row.split("|")[3]) for row in rows]
    behind = [line.split("|")[1:4] for line in text.splitlines() if line.endswith("| behind |")]
    named = "; ".join(
        f"{h.strip()} vs {k.split(':', 1)[1].strip()} {b.strip()}" for h, k, b in behind
    )
    heads = run / "train" / "model" / "heads.safetensors"
    size = f"{heads.stat().st_size / 1e6:.1f}" if heads.is_file() else "-"
    mean, fast, tfidf, count = summary.groups()
    return (
        f"| {seed} | {positives} | {min(negatives):.2f} to {max(negatives):.2f} | {count}"
        f"{f' ({named})' if named else ''} | {mean} ({fast}, {tfidf}) | {size} |"
    )


LEVEL_ROWS = re.compile(r"score level from (\d+) rows")


def logs(args: argparse.Namespace) -> list[Path]:
    return [p for s in args.seeds if (p := args.runs / f"btrm-relevel{s}.log").is_file()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--write", action="store_true", help="update docs/btrm.md")
    args = parser.parse_args()
    lines = [
        "## The score level on three seeds",
        "",
        "Each seed: `python bench/btrm_vs_baselines.py --data-dir ../shared/data/corpora "
        "--max-steps 500 --seed S --output runs/btrm-levelS` (training), then the tf-idf "
        "regression and the level fitted by this code on its trained heads: `python "
        "bench/btrm_vs_baselines.py --data-dir ../shared/data/corpora --max-steps 500 --seed S "
        "--output runs/btrm-levelS --evaluate-only --refit-after-training --logistic-weight 1.0 "
        "> runs/btrm-relevelS.log` (the joint steps depend on neither), then `python "
        "bench/btrm_level_seeds.py --write`. Held-out documents of the bench's split; the level "
        "is fitted on LEVEL_ROWS rows: 10 % of the *training* documents kept out of training "
        "and a sample of training rows with the regression's part out of fold, never on "
        "held-out ones. The heads file stores the n-gram tables as their used rows.",
        "",
        f"| seed | median positive per head ({', '.join(HEADS)}) | median negatives | pairs "
        "behind fastText or TF-IDF by > 0.005 (of 109) | mean AUC (fastText, TF-IDF) | heads MB |",
        "|---|---|---|---|---|---|",
    ]
    for seed in args.seeds:
        log = args.runs / f"btrm-relevel{seed}.log"
        row = seed_row(seed, log, args.runs / f"btrm-level{seed}")
        if row is not None:
            lines.append(row)
    rows = [LEVEL_ROWS.search(log.read_text(errors="replace")) for log in logs(args)]
    counts = sorted({m.group(1) for m in rows if m is not None})
    lines[2] = lines[2].replace("LEVEL_ROWS", " or ".join(counts) or "?")
    publish(MARK, lines, args.write, DOCS / "btrm.md")


if __name__ == "__main__":
    main()
