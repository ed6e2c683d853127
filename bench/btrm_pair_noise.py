"""How much of "behind fastText by more than 0.005" on one fold is the fold's documents and
fastText's seed, not the model.

Reads the folds ``bench/btrm_vs_baselines.py --folds K --output OUTPUT`` trained (the model's
held-out scores from ``parts.npz``, ``bench/btrm_hard_pairs.py``) and, per fold:

- fastText retrained with other seeds on the same rows: the pairs on which two fastText
  seeds differ by more than 0.005, and the pairs the model is behind with each seed;
- for every pair the model trails fastText (seed 0, as the fold table) on, a bootstrap over
  held-out documents (both sides resampled, whole documents, the same draw for both models):
  the share of draws in which the model is still behind by more than 0.005, and the 90 %
  interval of model minus fastText.

    .venv/bin/python bench/btrm_pair_noise.py --output runs/btrm-folds [--seeds 0,1,2] [--write]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from _doc import DOCS, publish
from btrm_hard_pairs import MARGIN, auc, fold_parts, pair_masks
from btrm_vs_baselines import fasttext_scores
from termwise.config import load_yaml_config
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import MembershipTable, build_table

MARK = "<!-- btrm_pair_noise -->"
DRAWS = 1000


def pairs(table: MembershipTable, fold: dict[str, Any]) -> list[tuple[int, str]]:
    """Every (head, tier:source) pair the fold table judges against fastText."""
    return [
        (table.heads.index(head), key)
        for head, entry in fold["btrm"].items()
        for key in entry["auc"]
        if ":" in key and fold["fasttext"][head].get(key) is not None
    ]


def comparisons(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """``[positives, negatives]``: 1 where the positive scores higher, 1/2 on a tie."""
    return (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative[None, :])


def document_draws(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row weights of one bootstrap draw of whole documents (a row counts as often as its
    document was drawn)."""
    names, index = np.unique(groups, return_inverse=True)
    counts = np.bincount(rng.integers(0, len(names), len(names)), minlength=len(names))
    return counts[index].astype(np.float64)


def bootstrap(
    ours: np.ndarray,
    theirs: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    groups: np.ndarray,
    rng: np.random.Generator,
) -> tuple[float, float, float]:
    """Share of document draws with ours behind theirs by more than MARGIN, and the 5 % and
    95 % quantiles of ours minus theirs."""
    ours_c = comparisons(ours[positive], ours[negative])
    theirs_c = comparisons(theirs[positive], theirs[negative])
    gaps = np.empty(DRAWS)
    for d in range(DRAWS):
        wp, wn = document_draws(groups[positive], rng), document_draws(groups[negative], rng)
        total = wp.sum() * wn.sum()
        gaps[d] = (wp @ ours_c @ wn - wp @ theirs_c @ wn) / total
    low, high = np.quantile(gaps, [0.05, 0.95])
    return float(np.mean(gaps < -MARGIN)), float(low), float(high)


def fold_noise(
    k: int,
    fold: dict[str, Any],
    table: MembershipTable,
    parts: dict[str, np.ndarray],
    seeds: list[int],
) -> tuple[list[str], dict[str, Any]]:
    rows = parts["rows"]
    ours = parts["neural"] + parts["lexical"] + parts["logistic"]
    fast = {seed: fasttext_scores(table, seed) for seed in seeds}
    judged = pairs(table, fold)
    masks = {
        (h, key): (table.positive[rows, h], pair_masks(table, rows, h, key)) for h, key in judged
    }

    def gap(scores: np.ndarray, h: int, key: str) -> float:
        positive, negative = masks[(h, key)]
        return auc(ours[positive, h], ours[negative, h]) - auc(
            scores[positive, h], scores[negative, h]
        )

    behind = {seed: sum(gap(fast[seed], h, key) < -MARGIN for h, key in judged) for seed in seeds}
    unstable = 0
    for h, key in judged:
        positive, negative = masks[(h, key)]
        values = [auc(fast[s][positive, h], fast[s][negative, h]) for s in seeds]
        unstable += max(values) - min(values) > MARGIN
    rng = np.random.default_rng(k)
    lines = []
    for h, key in judged:
        if gap(fast[seeds[0]], h, key) >= -MARGIN:
            continue
        positive, negative = masks[(h, key)]
        share, low, high = bootstrap(
            ours[:, h], fast[seeds[0]][:, h], positive, negative, table.group[rows], rng
        )
        documents = (
            len(np.unique(table.group[rows][positive])),
            len(np.unique(table.group[rows][negative])),
        )
        per_seed = " / ".join(f"{gap(fast[s], h, key):+.3f}" for s in seeds)
        lines.append(
            f"| {k} | {table.heads[h]} | {key} | {documents[0]} / {documents[1]} | {per_seed} | "
            f"{share:.2f} | {low:+.3f} .. {high:+.3f} |"
        )
    return lines, {"pairs": len(judged), "behind": behind, "unstable": unstable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("runs/btrm-folds"))
    parser.add_argument(
        "--seeds", default="0,1,2", help="fastText seeds (the first is the fold table's)"
    )
    parser.add_argument("--write", action="store_true", help="update docs/btrm.md")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    pair_lines: list[str] = []
    summaries: list[tuple[int, dict[str, Any]]] = []
    for fold_dir in sorted(args.output.glob("fold-*")):
        if not (fold_dir / "fold.json").is_file():
            continue
        k = int(fold_dir.name.split("-")[1])
        fold = orjson.loads((fold_dir / "fold.json").read_bytes())
        table = build_table(load_yaml_config(fold_dir / "config.yaml", BtrmConfig))
        lines, summary = fold_noise(k, fold, table, fold_parts(fold_dir, table), seeds)
        pair_lines += lines
        summaries.append((k, summary))
        print(fold_dir.name, summary, flush=True)
    seed_cells = " / ".join(str(s) for s in seeds)
    lines = [
        "## Pairs behind fastText: documents and seeds (`bench/btrm_pair_noise.py`)",
        "",
        f"Command: `.venv/bin/python bench/btrm_pair_noise.py --output {args.output} --seeds "
        f"{args.seeds}{' --write' if args.write else ''}`. The trained fold models' held-out "
        f"scores; fastText retrained with seeds {seed_cells} on the same rows.",
        "",
        f"| fold | pairs | behind fastText, seed {seed_cells} | pairs where fastText's seeds "
        "differ by more than 0.005 |",
        "|---|---|---|---|",
    ]
    for k, s in summaries:
        counts = " / ".join(str(s["behind"][seed]) for seed in seeds)
        lines.append(f"| {k} | {s['pairs']} | {counts} | {s['unstable']} |")
    lines += [
        "",
        f"Each pair behind fastText (seed {seeds[0]}): held-out documents (positive / negative), "
        f"model minus fastText per seed, and over {DRAWS} draws of whole held-out documents "
        "the share still behind by more than 0.005 and the 90 % interval of the gap.",
        "",
        f"| fold | head | negative | documents | model - fastText, seed {seed_cells} | "
        "share of draws behind | 90 % interval |",
        "|---|---|---|---|---|---|---|",
        *pair_lines,
    ]
    publish(MARK, lines, args.write, DOCS / "btrm.md")


if __name__ == "__main__":
    main()
