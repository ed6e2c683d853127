"""The score level: one affine map per head, fitted on scores of texts as if unseen.

The log-square term holds the *training* positives near 1, but texts the model never saw
score differently (the tf-idf regression memorises its training rows), so each head ends at
its own level and one threshold means a different thing on every head. After training, each
head's scores set ``scale * s + offset`` so that their median positive lands at 1 and their
median negative at -1. The map is increasing, so every ranking (and AUC) is unchanged.

The scores it is fitted on are of two kinds of rows: the documents kept out of training
(``level_fraction``), scored by the final model; and a sample of the training rows, scored
with the regression's part out of fold (recipes/btrm/logistic_fit.py) and the heads' part
as trained. The kept-out documents alone are few (five of a head's, on the bench) and moved
a head's unseen median to 1.34 on one seed; the training rows bring every document of a
head. The heads' part is taken in sample because it barely memorises: at the default steps
it sees each training row about once, and its median positive on training rows is within
0.05 of that on held-out documents where those are more than a handful (docs/btrm.md).

A head keeps its raw scores, and the summary says why, when no level can be fitted:
- its documents kept out of training (seen by no part of the model) are fewer than
  ``MIN_UNSEEN_DOCUMENTS``. The training rows are stand-ins, not evidence: on the bundled
  sample at 80 steps the news head's training positives sit at 1.1 and its four held-out
  documents at 0.1, and nothing the run holds could have shown which it is. On the full
  corpora this keeps the Brown heads raw (2-6 such documents each) and levels reviews,
  dialogue and glossary (over 100 each); the same count judges a level on the bench's folds.
- its medians sit closer than ``MIN_GAP``: the map would multiply noise (a tiny or
  untrained model gives gaps of 0.01 and scales of 200).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_GAP = 0.2  # raw scores are tanh-capped near [-1, 1]; below this the scale would pass 10
MIN_UNSEEN_DOCUMENTS = 20  # a median over fewer documents is the documents, not the head


@dataclass
class Level:
    scale: np.ndarray  # [heads]
    offset: np.ndarray  # [heads]
    positive_median: np.ndarray  # [heads] before the map (nan: none seen)
    negative_median: np.ndarray
    fitted: np.ndarray  # [heads] bool: False keeps the raw scores
    rows: int
    unseen_documents: np.ndarray  # [heads] the head's positive documents seen by no part

    def why_raw(self, h: int) -> str:
        if self.fitted[h]:
            return ""
        if self.unseen_documents[h] < MIN_UNSEEN_DOCUMENTS:
            return (
                f" (kept raw: {self.unseen_documents[h]} unseen documents, a level needs "
                f"{MIN_UNSEEN_DOCUMENTS})"
            )
        return " (kept raw: medians too close)"

    def summary(self, heads: list[str]) -> str:
        medians = ", ".join(
            f"{head} {p:+.2f}/{n:+.2f}{self.why_raw(h)}"
            for h, (head, p, n) in enumerate(
                zip(heads, self.positive_median, self.negative_median, strict=True)
            )
        )
        if not self.fitted.any():  # say so first: no head's scores were moved
            return (
                f"score level: none fitted, every head keeps its raw scores (median "
                f"positive/negative over {self.rows} rows): {medians}"
            )
        return (
            f"score level from {self.rows} rows (median positive/negative before -> +1/-1, "
            f"where fitted): {medians}"
        )


def fit_level(
    scores: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    unseen_documents: np.ndarray | None = None,
) -> Level:
    """``scores``, ``positive`` and ``negative`` are ``[rows, heads]``; ``unseen_documents``
    ``[heads]`` counts each head's positive documents that no part of the model saw (None:
    enough). A head without both positives and negatives among the rows, with fewer than
    ``MIN_UNSEEN_DOCUMENTS`` unseen documents, or whose median positive is not ``MIN_GAP``
    above its median negative, keeps its raw scores (scale 1, offset 0).

    >>> scores = np.array([[3.0], [2.0], [0.0], [-1.0]])
    >>> level = fit_level(scores, scores > 1, scores <= 0)
    >>> [round(float(v), 3) for v in scores[:, 0] * level.scale + level.offset]
    [1.333, 0.667, -0.667, -1.333]
    >>> fit_level(np.array([[0.51], [0.5]]), np.array([[True], [False]]),
    ...           np.array([[False], [True]])).scale.tolist()
    [1.0]
    """
    heads = scores.shape[1]
    if unseen_documents is None:
        unseen_documents = np.full(heads, MIN_UNSEEN_DOCUMENTS)
    scale, offset = np.ones(heads), np.zeros(heads)
    pos_median, neg_median = np.full(heads, np.nan), np.full(heads, np.nan)
    fitted = np.zeros(heads, dtype=bool)
    for h in range(heads):
        pos, neg = scores[positive[:, h], h], scores[negative[:, h], h]
        if not len(pos) or not len(neg):
            continue
        pos_median[h], neg_median[h] = np.median(pos), np.median(neg)
        enough = unseen_documents[h] >= MIN_UNSEEN_DOCUMENTS
        if enough and pos_median[h] - neg_median[h] >= MIN_GAP:
            scale[h] = 2.0 / (pos_median[h] - neg_median[h])
            offset[h] = 1.0 - scale[h] * pos_median[h]
            fitted[h] = True
    return Level(scale, offset, pos_median, neg_median, fitted, len(scores), unseen_documents)
