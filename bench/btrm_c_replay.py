"""The tf-idf regression's L2 strength (``lexical.logistic_c``), replayed on the trained folds.

Candidates fixed in docs/btrm.md ("Replayed candidates: the regression's L2 strength") before
they ran: ``C`` 1 and 16 on every head, and each head's ``C`` from {1, 4, 16} chosen by how its
regression ranks out of fold on its own training rows (the ten document folds training uses
for the level; the mean over the head's (tier, source) negatives of the AUC of its positives
against them). Each candidate refits the regression on a fold's training rows and rescores
the held-out rows; the backbone and branch parts are the trained model's (``parts.npz``).
Ranking only, as ``bench/btrm_min_df_replay.py``, whose refit and verdict this reuses.

    .venv/bin/python bench/btrm_c_replay.py --output runs/btrm-folds [--write]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sklearn.metrics import roc_auc_score

from _doc import DOCS, publish
from btrm_hard_pairs import fold_parts, pair_masks, replay
from btrm_min_df_replay import (
    CENTRE_TOLERANCE,
    centre_spread,
    refit,
    replay_table,
    verdict_lines,
)
from termwise.config import load_yaml_config
from termwise.models.lexical import ngram_bags
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import MembershipTable, build_table
from termwise.recipes.btrm.logistic_fit import (
    FOLDS,
    document_fold,
    labels_and_weights,
    out_of_fold_logits,
)
from termwise.recipes.btrm.recipe import training_rows

MARK = "<!-- btrm_c_replay -->"
DEFAULT_C = 4.0  # the config's logistic_c; the script stops if the folds were trained otherwise
CHOICES = (1.0, 4.0, 16.0)
FIXED = {"default: C 4": 4.0, "C1: C 1": 1.0, "C16: C 16": 16.0}
PER_HEAD = "per head: C out of fold"


def out_of_fold_rank(
    table: MembershipTable,
    config: BtrmConfig,
    bags: list[list[int]],
    keys: dict[str, list[str]],
    inverse_l2: float,
) -> np.ndarray:
    """Per head, the mean over ``keys[head]`` (tier:source negatives) of the AUC of the
    head's training positives against them, each training row scored by the regression
    fitted on the other document folds, with ``C`` ``inverse_l2``."""
    rows, _ = training_rows(table, config)
    row_bags = [bags[i] for i in rows]
    labels, weights = labels_and_weights(table, rows, config)
    settings = config.lexical.model_copy(update={"logistic_c": inverse_l2})
    fold = document_fold(table.group[rows], FOLDS)
    logits = out_of_fold_logits(row_bags, labels, weights, fold, settings)
    means = np.zeros(len(table.heads))
    for h, head in enumerate(table.heads):
        positive = labels[:, h]
        values = []
        for key in keys[head]:
            negative = pair_masks(table, rows, h, key)
            if positive.any() and negative.any():
                truth = np.r_[np.ones(positive.sum()), np.zeros(negative.sum())]
                scores = np.r_[logits[positive, h], logits[negative, h]]
                values.append(roc_auc_score(truth, scores))
        means[h] = np.mean(values) if values else np.nan
    return means


def chosen_c(ranks: dict[float, np.ndarray]) -> np.ndarray:
    """Per head, the ``C`` with the best out-of-fold rank; ties (and no rank) keep the default.

    >>> ranks = {1.0: np.array([0.9, 0.8]), 4.0: np.array([0.9, 0.7]), 16.0: np.array([0.8, 0.7])}
    >>> chosen_c(ranks).tolist()
    [4.0, 1.0]
    """
    heads = len(next(iter(ranks.values())))
    best = np.full(heads, DEFAULT_C)
    for h in range(heads):
        top = ranks[DEFAULT_C][h]
        for value, rank in ranks.items():
            if rank[h] > top:  # strictly better than every earlier one, the default first
                best[h], top = value, rank[h]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("runs/btrm-folds"))
    parser.add_argument("--write", action="store_true", help="update docs/btrm.md")
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in [*FIXED, PER_HEAD]}
    spreads: list[float] = []
    choices: list[str] = []
    heads: list[str] = []
    for fold_dir in sorted(args.output.glob("fold-*")):
        if not (fold_dir / "fold.json").is_file():
            continue
        fold = orjson.loads((fold_dir / "fold.json").read_bytes())
        config = load_yaml_config(fold_dir / "config.yaml", BtrmConfig)
        if config.lexical.logistic_c != DEFAULT_C:
            raise SystemExit(f"{fold_dir}: trained with logistic_c {config.lexical.logistic_c}")
        table = build_table(config)
        heads = table.heads
        parts = fold_parts(fold_dir, table)
        lexical = config.lexical
        bags = ngram_bags(table.texts, lexical.buckets, lexical.word_ngrams, lexical.max_words)
        refitted = {
            c: refit(table, config, bags, parts["rows"], "texts", lexical.logistic_min_df, c)
            for c in CHOICES
        }
        spreads.append(centre_spread(refitted[DEFAULT_C], parts["logistic"]))
        for name, c in FIXED.items():
            results[name].append(replay(fold, table, parts, refitted[c]))
        keys = {head: [k for k in entry["auc"] if ":" in k] for head, entry in fold["btrm"].items()}
        ranks = {c: out_of_fold_rank(table, config, bags, keys, c) for c in CHOICES}
        best = chosen_c(ranks)
        per_head = np.stack([refitted[c][:, h] for h, c in enumerate(best)], axis=1)
        results[PER_HEAD].append(replay(fold, table, parts, per_head))
        choices.append(
            f"| {fold_dir.name.split('-')[1]} | "
            + " | ".join(
                f"{best[h]:g} ({', '.join(f'{ranks[c][h]:.3f}' for c in CHOICES)})"
                for h in range(len(table.heads))
            )
            + " |"
        )
        print(fold_dir.name, {name: rows[-1] for name, rows in results.items()}, flush=True)
    if max(spreads) > CENTRE_TOLERANCE:
        raise SystemExit(f"the default's refit does not reproduce the saved regression: {spreads}")
    lines = [
        "## Replayed: the regression's L2 strength (`bench/btrm_c_replay.py`)",
        "",
        f"Command: `.venv/bin/python bench/btrm_c_replay.py --output {args.output}"
        f"{' --write' if args.write else ''}`. The regression refitted on each fold's training "
        "rows with each `C`, the backbone and branch parts kept; the default's refit reproduces "
        f"the trained model's regression on every fold (largest difference beyond the centre "
        f"{max(spreads):.1e}). Per fold: pairs behind fastText / behind TF-IDF (by more than "
        "0.005) / mean AUC.",
        "",
        *replay_table(results),
    ]
    lines += [
        "",
        "The per-head choice: each head's `C`, and its out-of-fold rank on the training rows "
        f"with `C` {', '.join(f'{c:g}' for c in CHOICES)}.",
        "",
        "| fold | " + " | ".join(heads) + " |",
        "|---|" + "---|" * len(heads),
        *choices,
    ]
    lines += verdict_lines(results)
    publish(MARK, lines, args.write, DOCS / "btrm.md")


if __name__ == "__main__":
    main()
