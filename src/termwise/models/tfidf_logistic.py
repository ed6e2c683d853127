"""A logistic regression per output on tf-idf weighted hashed word n-grams.

The same bags of hashed n-grams as :mod:`termwise.models.lexical`, weighted as
scikit-learn's ``TfidfVectorizer(sublinear_tf=True)`` weights words: per text, each distinct
bucket gets ``(1 + log count) * idf``, with the smoothed ``idf = log((1 + n) / (1 + df)) + 1``
over the ``n`` fitting texts (0 for buckets seen in fewer than ``min_df`` of them: a bigram
seen once is one document's name, not a genre's), and the row is L2-normalised. Each output
is then a logistic regression on those features, fitted to convergence with L2 (``C``), as
the classic TF-IDF baseline is, with a weight per row (the caller's: which rows count, and
how much).

Why beside the SGD-trained branch: on the same hashed features, a logistic regression
fitted this way ranks as well as TF-IDF over words, where the branch trained a few thousand
steps with the heads does not (docs/btrm.md).

At scoring time the model is an ``embedding_bag`` sum with per-occurrence weights, so it
reads the same packed ``(ids, offsets)`` as the branch and needs no sparse matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from termwise.models.lexical import pack_bags

MATRIX_CHUNK = 4096  # rows packed at a time while building the fitting matrix


def document_frequency_idf(bags: Sequence[Sequence[int]], buckets: int, min_df: int) -> np.ndarray:
    """Smoothed idf of every bucket over ``bags``; 0 where fewer than ``min_df`` bags hold it."""
    frequency = np.zeros(buckets, dtype=np.int64)
    for bag in bags:
        frequency[np.unique(np.asarray(bag, dtype=np.int64))] += 1
    idf = np.log((1 + len(bags)) / (1 + frequency)) + 1.0
    idf[frequency < min_df] = 0.0
    return idf.astype(np.float32)


def tfidf_occurrence_weights(ids: Tensor, offsets: Tensor, idf: Tensor) -> Tensor:
    """Per-occurrence weights whose sum over a bag's occurrences of one bucket is that
    bucket's normalised tf-idf value: an ``embedding_bag(mode="sum")`` with them is the
    dot product of the tf-idf row with the weights."""
    lengths = torch.diff(offsets, append=torch.tensor([ids.numel()], device=ids.device))
    bag = torch.repeat_interleave(torch.arange(len(offsets), device=ids.device), lengths)
    key = bag * idf.numel() + ids
    _, inverse, counts = torch.unique(key, return_inverse=True, return_counts=True)
    count = counts[inverse].to(idf.dtype)
    value = (1.0 + torch.log(count)) * idf[ids]  # the distinct bucket's tf-idf, per occurrence
    # Each distinct bucket appears `count` times: dividing by it counts its value once.
    squared_norm = torch.zeros(len(offsets), dtype=idf.dtype, device=ids.device)
    squared_norm.index_add_(0, bag, value.square() / count)
    norm = squared_norm.sqrt()[bag]
    return torch.where(norm > 0, value / (count * norm.clamp_min(1e-12)), torch.zeros_like(value))


def tfidf_matrix(bags: Sequence[Sequence[int]], idf: np.ndarray) -> object:
    """The normalised tf-idf rows of ``bags`` as a scipy CSR matrix ``[len(bags), buckets]``."""
    import scipy.sparse as sparse

    idf_tensor = torch.from_numpy(idf)
    rows, columns, values = [], [], []
    for start in range(0, len(bags), MATRIX_CHUNK):
        ids, offsets = pack_bags(bags[start : start + MATRIX_CHUNK])
        weights = tfidf_occurrence_weights(ids, offsets, idf_tensor)
        lengths = torch.diff(offsets, append=torch.tensor([ids.numel()]))
        rows.append(np.repeat(np.arange(start, start + len(offsets)), lengths.numpy()))
        columns.append(ids.numpy())
        values.append(weights.numpy())
    # Duplicate (row, bucket) entries are summed: each bucket's occurrences add up to its value.
    return sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
        shape=(len(bags), len(idf)),
    )


def fit_logistic(
    features: object, labels: np.ndarray, sample_weight: np.ndarray, inverse_l2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per output ``o``: a logistic regression of ``labels[:, o]`` on the ``features`` rows
    with ``sample_weight[:, o] > 0``, weighted by it. Returns ``coef [buckets, outputs]``
    and ``intercept [outputs]``; an output without both classes among its rows stays at
    zero.

    Each fit sees only the buckets its rows hold: an absent bucket has no data gradient, so
    L2 keeps its weight at exactly 0 either way, so L-BFGS works over the tens of thousands
    of used columns instead of ``2^20`` and reaches the same solution (tested)."""
    from sklearn.linear_model import LogisticRegression

    outputs = labels.shape[1]
    coef = np.zeros((features.shape[1], outputs), dtype=np.float32)  # type: ignore[attr-defined]
    intercept = np.zeros(outputs, dtype=np.float32)
    for o in range(outputs):
        rows = np.flatnonzero(sample_weight[:, o] > 0)
        if len(np.unique(labels[rows, o])) < 2:
            continue
        selected = features[rows]  # type: ignore[index]
        used = np.unique(selected.indices)
        model = LogisticRegression(C=inverse_l2, max_iter=2000)
        model.fit(selected[:, used], labels[rows, o], sample_weight=sample_weight[rows, o])
        coef[used, o] = model.coef_[0]
        intercept[o] = model.intercept_[0]
    return coef, intercept


class TfidfLogistic(nn.Module):
    """``[batch, outputs]`` logits ``tfidf(bag) @ weight + bias``; all three tensors are
    buffers: it is fitted by scikit-learn, never by the optimiser."""

    idf: Tensor
    weight: Tensor
    bias: Tensor

    def __init__(self, buckets: int, outputs: int) -> None:
        super().__init__()
        self.register_buffer("idf", torch.zeros(buckets))
        self.register_buffer("weight", torch.zeros(buckets, outputs))
        self.register_buffer("bias", torch.zeros(outputs))

    def set(self, idf: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> None:
        """Install fitted values (shapes as built)."""
        for name, value in (("idf", idf), ("weight", weight), ("bias", bias)):
            buffer = getattr(self, name)
            buffer.copy_(torch.as_tensor(value, dtype=buffer.dtype))

    def forward(self, ids: Tensor, offsets: Tensor) -> Tensor:
        weights = tfidf_occurrence_weights(ids, offsets, self.idf)
        summed = F.embedding_bag(ids, self.weight, offsets, mode="sum", per_sample_weights=weights)
        return summed + self.bias
