"""The btrm lexical branch alone against TF-IDF + logistic regression, on the same split.

Issue 17's pairs behind a baseline are mostly behind TF-IDF. The branch (hashed word 1-2
grams, mean over the bag) is a linear model on the same kind of features, so this asks
where the gap is, without a backbone pass (each arm takes seconds to a minute):

* ``bt``: the branch fitted alone by termwise's pre-fit (``lexical.prefit_epochs`` passes,
  the BT + log-square loss, ``SparseAdam``), then scored on held-out rows;
* ``logistic``: the tf-idf logistic regression per head that ``train`` adds after training
  (scikit-learn, C 4, as the TF-IDF baseline) on the branch's own hashed buckets, tf-idf
  weighted (sublinear tf, smoothed idf, rows L2-normalised), buckets seen in fewer than
  ``--min-df`` training rows dropped; negatives weighted by tier, positives as much as the
  negatives in all;
* ``logistic-unweighted``: the same with every labelled row weighted 1.

Per arm: pairs behind TF-IDF by more than 0.005 (of 109), the mean AUC over the (head,
tier:source) pairs, and the median score of training and of held-out positives per head
(a branch that memorises its training rows scores them higher than new ones).

    .venv/bin/python bench/lexical_alone.py [--data-dir ../shared/data/corpora]
        [--arms bt,logistic,logistic-unweighted] [--prefit-epochs 3] [--min-df 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from btrm_vs_baselines import aucs, baseline_scores
from termwise.models.lexical import pack_bags
from termwise.models.tfidf_logistic import document_frequency_idf, fit_logistic, tfidf_matrix
from termwise.recipes.btrm.config import BtrmConfig, default_config
from termwise.recipes.btrm.lexical_fit import prefit_lexical
from termwise.recipes.btrm.logistic_fit import balanced_weights
from termwise.recipes.btrm.prepared import Prepared, prepare
from termwise.recipes.btrm.recipe import build_model
from termwise.terms import soft_cap

SCORE_CHUNK = 2048


def bt_scores(prepared: Prepared, config: BtrmConfig, epochs: int, seed: int) -> np.ndarray:
    """Soft-capped branch scores ``[rows, heads]`` after the pre-fit alone."""
    config = config.model_copy(
        update={
            "lexical": config.lexical.model_copy(update={"prefit_epochs": epochs}),
            "trainer": config.trainer.model_copy(update={"seed": seed}),
        }
    )
    table = prepared.table
    assert prepared.bags is not None
    model = build_model(config, prepared.backbone)
    weights = table.negative_weight(config.tier_weights.model_dump())
    train_rows = table.split(heldout=False)
    prefit_lexical(model, table, prepared.bags, prepared.lengths, train_rows, weights, config)
    branch = model.heads.lexical
    assert branch is not None
    out = []
    with torch.no_grad():
        for start in range(0, len(table.texts), SCORE_CHUNK):
            ids, offsets = pack_bags(prepared.bags[start : start + SCORE_CHUNK])
            out.append(soft_cap(branch(ids, offsets), config.logit_cap))
    return torch.cat(out).numpy()


def logistic_scores(
    prepared: Prepared, config: BtrmConfig, min_df: int, balanced: bool
) -> np.ndarray:
    """Decision values ``[rows, heads]`` of termwise's tf-idf logistic regression per head
    (:mod:`termwise.models.tfidf_logistic`) fitted on the training rows: ``balanced`` as
    ``train`` fits it (negatives by tier weight, positives as much as negatives in all),
    else every labelled row weighted 1."""
    table, bags = prepared.table, prepared.bags
    assert bags is not None
    train_rows = table.split(heldout=False)
    idf = document_frequency_idf([bags[i] for i in train_rows], config.lexical.buckets, min_df)
    features = tfidf_matrix(bags, idf)
    labels = table.positive[train_rows]
    tier_weight = table.negative_weight(config.tier_weights.model_dump())[train_rows]
    if balanced:
        weights = balanced_weights(labels, tier_weight)
    else:
        weights = (labels | (tier_weight > 0)).astype(np.float64)
    coef, intercept = fit_logistic(
        features[train_rows],  # type: ignore[index]
        labels,
        weights,
        config.lexical.logistic_c,
    )
    return np.asarray(features @ coef + intercept)


def report(
    name: str, prepared: Prepared, scores: np.ndarray, tfidf: dict[str, dict[str, float | None]]
) -> None:
    table = prepared.table
    train_rows, test_rows = table.split(heldout=False), table.split(heldout=True)
    mine = aucs(table, scores[test_rows])
    pairs = [(h, k) for h in mine for k in mine[h] if ":" in k]
    behind = sum(mine[h][k] < tfidf[h][k] - 0.005 for h, k in pairs)  # type: ignore[operator]
    mean = float(np.mean([mine[h][k] for h, k in pairs]))
    print(f"{name}: behind TF-IDF on {behind} of {len(pairs)} pairs, mean AUC {mean:.4f}")
    for h, head in enumerate(table.heads):
        train = np.median(scores[train_rows[table.positive[train_rows, h]], h])
        held = np.median(scores[test_rows[table.positive[test_rows, h]], h])
        print(f"  {head}: median positive score, training {train:.2f}, held out {held:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/corpora"))
    parser.add_argument("--arms", default="bt,logistic,logistic-unweighted")
    parser.add_argument("--prefit-epochs", type=int, default=3)
    parser.add_argument("--min-df", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = default_config(args.data_dir, 500)
    prepared = prepare(config)
    table = prepared.table
    tfidf = aucs(table, baseline_scores(table))
    mean = np.mean([tfidf[h][k] for h in tfidf for k in tfidf[h] if ":" in k])
    print(f"TF-IDF baseline: mean AUC {mean:.4f}")
    for arm in args.arms.split(","):
        if arm == "bt":
            scores = bt_scores(prepared, config, args.prefit_epochs, args.seed)
            report(f"bt pre-fit, {args.prefit_epochs} passes", prepared, scores, tfidf)
        elif arm in ("logistic", "logistic-unweighted"):
            balanced = arm == "logistic"
            scores = logistic_scores(prepared, config, args.min_df, balanced)
            report(f"{arm}, min df {args.min_df}", prepared, scores, tfidf)
        else:
            raise SystemExit(f"--arms: unknown arm {arm!r} (bt, logistic, logistic-unweighted)")


if __name__ == "__main__":
    main()
