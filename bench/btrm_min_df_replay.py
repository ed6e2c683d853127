"""The tf-idf regression with its ``min_df`` counted by document, replayed on the trained folds.

A Brown document is cut into about 15 rows, so one document's names clear ``logistic_min_df``
2, which counts texts: the regression learns the document. Each candidate here refits the
regression on a fold's training rows (as ``btrm train`` fits it, weights and ``C`` alike) with
an n-gram needing ``min_df`` texts or documents, and rescores the held-out rows; the backbone
and branch parts are the trained model's (``parts.npz``, written by
``bench/btrm_hard_pairs.py``). Ranking only: the level is not replayed (docs/btrm.md, "Replayed
candidates"). The default is refitted too, and must rank as the trained model did: its
regression part may differ from the saved one only by the per-head centre.

    .venv/bin/python bench/btrm_min_df_replay.py --output runs/btrm-folds [--write]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from _doc import DOCS, publish
from btrm_hard_pairs import fold_parts, replay
from termwise.config import load_yaml_config
from termwise.models.lexical import ngram_bags
from termwise.models.tfidf_logistic import document_frequency_idf, fit_logistic, tfidf_matrix
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import MembershipTable, build_table
from termwise.recipes.btrm.logistic_fit import labels_and_weights
from termwise.recipes.btrm.recipe import training_rows

MARK = "<!-- btrm_min_df_replay -->"
CENTRE_TOLERANCE = 1e-3  # float32 scores: the default's refit vs the saved part, less the centre
# name: (what min_df counts, min_df); the first is the default, the baseline of the rule.
CANDIDATES = {
    "default: 2 texts": ("texts", 2),
    "A: 2 documents": ("documents", 2),
    "B: 3 documents": ("documents", 3),
}


def idf_by(
    bags: list[list[int]], groups: np.ndarray, buckets: int, count: str, min_df: int
) -> np.ndarray:
    """The regression's idf over ``bags``, zero where fewer than ``min_df`` texts (``count``
    "texts") or distinct documents ("documents") hold the n-gram."""
    idf = document_frequency_idf(bags, buckets, min_df if count == "texts" else 1)
    if count == "documents":
        documents = np.zeros(buckets, dtype=np.int64)
        for group in np.unique(groups):
            held = [bags[i] for i in np.flatnonzero(groups == group)]
            documents[np.unique(np.concatenate([np.asarray(b) for b in held]))] += 1
        idf[documents < min_df] = 0.0
    return idf


def refit(
    table: MembershipTable,
    config: BtrmConfig,
    bags: list[list[int]],
    held: np.ndarray,
    count: str,
    min_df: int,
    inverse_l2: float | None = None,
) -> np.ndarray:
    """``[held rows, heads]``: the refitted regression's part of the held-out rows' scores
    (uncentred: a constant per head, which no AUC sees); ``inverse_l2``: its ``C``, the
    config's by default."""
    settings = config.lexical
    rows, _ = training_rows(table, config)
    row_bags = [bags[i] for i in rows]
    idf = idf_by(row_bags, table.group[rows], settings.buckets, count, min_df)
    labels, weights = labels_and_weights(table, rows, config)
    strength = settings.logistic_c if inverse_l2 is None else inverse_l2
    coef, intercept = fit_logistic(tfidf_matrix(row_bags, idf), labels, weights, strength)
    features = tfidf_matrix([bags[i] for i in held], idf)
    return settings.logistic_weight * (features @ coef + intercept)  # type: ignore[operator]


def centre_spread(refitted: np.ndarray, saved: np.ndarray) -> float:
    """Largest spread, over heads, of ``refitted - saved``: 0 when they differ by a constant."""
    difference = refitted - saved
    return float((difference.max(axis=0) - difference.min(axis=0)).max())


def verdict(default: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> list[str]:
    """Conditions 1, 2 and 4 of docs/btrm.md's rule, one line each."""
    fast = sum(r["fasttext"] for r in candidate), sum(r["fasttext"] for r in default)
    worse = [
        k
        for k, (d, c) in enumerate(zip(default, candidate, strict=True))
        if c["tfidf"] > d["tfidf"]
    ]
    change = min(c["mean"] - d["mean"] for d, c in zip(default, candidate, strict=True))
    return [
        f"{'met' if fast[0] < fast[1] else 'NOT met'}: fewer pairs behind fastText "
        f"({fast[0]} against {fast[1]})",
        f"{'met' if not worse else 'NOT met'}: no fold with more pairs behind TF-IDF"
        + (f" (more on fold {', '.join(map(str, worse))})" if worse else ""),
        f"{'met' if change >= -0.001 else 'NOT met'}: mean AUC at least the default's minus "
        f"0.001 on every fold (smallest change {change:+.4f})",
    ]


def replay_table(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Per candidate and fold: pairs behind fastText / behind TF-IDF / mean AUC, and the
    pairs behind fastText summed."""
    folds = len(next(iter(results.values())))
    lines = [
        "| candidate | "
        + " | ".join(f"fold {k}" for k in range(folds))
        + " | behind fastText, summed |",
        "|---|" + "---|" * (folds + 1),
    ]
    for name, rows in results.items():
        cells = " | ".join(f"{r['fasttext']} / {r['tfidf']} / {r['mean']:.4f}" for r in rows)
        lines.append(f"| {name} | {cells} | {sum(r['fasttext'] for r in rows)} |")
    return lines


def verdict_lines(results: dict[str, list[dict[str, Any]]]) -> list[str]:
    """:func:`verdict` of every candidate against the first (the default)."""
    default, *candidates = results
    lines: list[str] = []
    for name in candidates:
        lines += ["", f"{name}, against the rule's ranking conditions:", ""]
        lines += [f"- {line}" for line in verdict(results[default], results[name])]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("runs/btrm-folds"))
    parser.add_argument("--write", action="store_true", help="update docs/btrm.md")
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in CANDIDATES}
    spreads: list[float] = []
    for fold_dir in sorted(args.output.glob("fold-*")):
        if not (fold_dir / "fold.json").is_file():
            continue
        fold = orjson.loads((fold_dir / "fold.json").read_bytes())
        config = load_yaml_config(fold_dir / "config.yaml", BtrmConfig)
        table = build_table(config)
        parts = fold_parts(fold_dir, table)
        lexical = config.lexical
        bags = ngram_bags(table.texts, lexical.buckets, lexical.word_ngrams, lexical.max_words)
        for name, (count, min_df) in CANDIDATES.items():
            logistic = refit(table, config, bags, parts["rows"], count, min_df)
            if name == next(iter(CANDIDATES)):
                spreads.append(centre_spread(logistic, parts["logistic"]))
            results[name].append(replay(fold, table, parts, logistic))
            print(fold_dir.name, name, results[name][-1], flush=True)
    if max(spreads) > CENTRE_TOLERANCE:
        raise SystemExit(f"the default's refit does not reproduce the saved regression: {spreads}")
    lines = [
        "## Replayed: the regression's min_df counted by document (`bench/btrm_min_df_replay.py`)",
        "",
        f"Command: `.venv/bin/python bench/btrm_min_df_replay.py --output {args.output}"
        f"{' --write' if args.write else ''}`. The regression refitted on each fold's training "
        "rows, the backbone and branch parts kept; the default's refit reproduces the trained "
        f"model's regression on every fold (largest difference beyond the centre "
        f"{max(spreads):.1e}). Per fold: pairs behind fastText / behind TF-IDF (by more than "
        "0.005) / mean AUC.",
        "",
        *replay_table(results),
    ]
    lines += verdict_lines(results)
    publish(MARK, lines, args.write, DOCS / "btrm.md")


if __name__ == "__main__":
    main()
