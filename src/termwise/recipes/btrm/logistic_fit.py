"""After training: a tf-idf logistic regression per head, added to the heads' scores
(``lexical.logistic_weight``; :mod:`termwise.models.tfidf_logistic`).

Fitted on every labelled training row, so it reads the whole training set where the joint
steps read ``max_steps x batch_size`` rows. Rows are weighted as the ranking loss weighs
pairs: each negative by its tier's weight (``tier_weights``), the positives together as
much as the negatives together (a head's positives are a few percent of its rows; unweighted,
the regression learns "not a negative" more than "this head"). Added with weight
``logistic_weight`` to the trained heads' scores before the cap: the sum ranks ahead of
either part (docs/btrm.md).

The level. The regression memorises its training rows (a document's rare n-grams), so its
logit on a training positive says little about an unseen one, and the log-square term held
the *training* positives near 1. Every training row is therefore also scored out of fold
(``FOLDS`` folds by document, each scored by a regression fitted on the others): the added
logit is centred on the median out-of-fold logit of the positives, so a typical unseen
positive gets about 0 from it, and those out-of-fold logits stand in for the regression's
part of a training row's score when the score level is fitted (recipes/btrm/level.py).
Ten folds, not two: a fold's regression then sees 90 % of the documents, as close to the
final one as the cost allows; with two it saw half, was less sure of unseen positives
than the final regression, and the level fitted on its logits left unseen positives of
the small heads up to 1.5 (docs/btrm.md).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from termwise.models.backbone import LexicalConfig
from termwise.models.tfidf_logistic import (
    TfidfLogistic,
    document_frequency_idf,
    fit_logistic,
    tfidf_matrix,
)
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import MembershipTable
from termwise.recipes.btrm.model import MultiHeadRewardModel

FOLDS = 10


@dataclass
class LogisticReport:
    seconds: float
    centre: np.ndarray  # per head: the out-of-fold median logit of training positives
    rows: np.ndarray  # the training rows (table indices) it was fitted on
    # [rows, heads]: what the regression adds to each training row's score when scored out
    # of fold (scaled and centred as the installed one), for the score level.
    out_of_fold: np.ndarray

    def summary(self, heads: list[str]) -> str:
        centres = ", ".join(f"{h} {c:.2f}" for h, c in zip(heads, self.centre, strict=True))
        return (
            f"tf-idf logistic regression per head fitted in {self.seconds:.0f} s; "
            f"out-of-fold median positive logit (subtracted): {centres}"
        )


def document_fold(groups: np.ndarray, folds: int) -> np.ndarray:
    """A stable fold per row from its document's name (rows of a document stay together)."""
    fold_of = {
        group: int.from_bytes(hashlib.blake2b(f"fold|{group}".encode(), digest_size=8).digest())
        % folds
        for group in np.unique(groups)
    }
    return np.array([fold_of[group] for group in groups], dtype=np.int64)


def balanced_weights(positive: np.ndarray, negative_weight: np.ndarray) -> np.ndarray:
    """Per row and head: a negative's tier weight; a positive ``sum(negative weights) /
    positives`` of its head, so that both classes weigh the same; 0 for unlabelled rows."""
    weights = np.where(positive, 0.0, negative_weight).astype(np.float64)
    positives = positive.sum(axis=0)
    share = weights.sum(axis=0) / np.maximum(positives, 1)
    return np.where(positive, share[None, :], weights)


def labels_and_weights(
    table: MembershipTable, rows: np.ndarray, config: BtrmConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The regression's ``[rows, heads]`` labels and row weights (:func:`balanced_weights`
    of the tier weights)."""
    labels = table.positive[rows]
    negative_weight = table.negative_weight(config.tier_weights.model_dump())[rows]
    return labels, balanced_weights(labels, negative_weight)


def out_of_fold_logits(
    bags: list[list[int]],
    labels: np.ndarray,
    sample_weight: np.ndarray,
    fold: np.ndarray,
    settings: LexicalConfig,
) -> np.ndarray:
    """``[rows, heads]``: each row's logit from a regression fitted on the other folds.

    Each fold's regression is fitted as the final one is, on its own rows only: its idf
    too, since an n-gram that the fitted rows never hold has no weight in the final model
    (new documents' own names drop out of their rows' norm; with the full idf they would
    dilute it and score lower than new documents do). Its ``C`` is scaled by the share of
    rows it sees, so that the L2 penalty per row is the final model's.
    """
    logits = np.zeros(labels.shape, dtype=np.float64)
    for held in np.unique(fold):
        inside = fold != held
        idf = document_frequency_idf(
            [bag for bag, used in zip(bags, inside, strict=True) if used],
            settings.buckets,
            settings.logistic_min_df,
        )
        features = tfidf_matrix(bags, idf)
        inverse_l2 = settings.logistic_c * len(bags) / max(int(inside.sum()), 1)
        coef, intercept = fit_logistic(
            features[inside],  # type: ignore[index]
            labels[inside],
            sample_weight[inside],
            inverse_l2,
        )
        logits[~inside] = features[~inside] @ coef + intercept  # type: ignore[index]
    return logits


def positive_centre(logits: np.ndarray, labels: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Per head, the median out-of-fold logit of its positives; 0 for a head whose positives
    sit in one fold only (their logits come from a regression that saw none).

    >>> logits = np.array([[3.0], [1.0], [-2.0]])
    >>> positive_centre(logits, np.array([[True], [True], [False]]), np.array([0, 1, 1])).tolist()
    [2.0]
    >>> positive_centre(logits, np.array([[True], [True], [False]]), np.array([0, 0, 1])).tolist()
    [0.0]
    """
    centre = np.zeros(labels.shape[1])
    for h in range(labels.shape[1]):
        positives = labels[:, h]
        if len(np.unique(fold[positives])) >= 2:
            centre[h] = np.median(logits[positives, h])
    return centre


def fit_tfidf_logistic(
    model: MultiHeadRewardModel,
    table: MembershipTable,
    bags: list[list[int]],
    rows: np.ndarray,
    config: BtrmConfig,
) -> LogisticReport | None:
    """Fit the regression on ``rows`` and attach it to ``model.heads``, scaled and centred.
    None when it is off (``logistic_weight`` 0, or no lexical bags)."""
    settings = config.lexical
    if not settings.enabled or settings.logistic_weight == 0 or not len(rows):
        return None
    started = time.perf_counter()
    row_bags = [bags[i] for i in rows]
    idf = document_frequency_idf(row_bags, settings.buckets, settings.logistic_min_df)
    features = tfidf_matrix(row_bags, idf)
    labels, weights = labels_and_weights(table, rows, config)
    fold = document_fold(table.group[rows], FOLDS)
    logits = out_of_fold_logits(row_bags, labels, weights, fold, settings)
    centre = positive_centre(logits, labels, fold)
    coef, intercept = fit_logistic(features, labels, weights, settings.logistic_c)
    scale = settings.logistic_weight
    logistic = TfidfLogistic(settings.buckets, len(table.heads))
    logistic.set(idf, scale * coef, scale * (intercept - centre))
    model.heads.logistic = logistic.to(model.heads.linear.weight.device)
    out_of_fold = scale * (logits - centre)
    return LogisticReport(time.perf_counter() - started, centre, rows, out_of_fold)
