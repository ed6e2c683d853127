"""Contrastive (InfoNCE) term for next-vector prediction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from termwise.terms._output import TermOutput


def next_vector_info_nce(
    pred: Tensor,
    target: Tensor,
    hard_negatives: Tensor | None = None,
    temperature: float | Tensor = 0.05,
) -> TermOutput:
    r"""InfoNCE: the prediction must pick its own target out of the batch's targets and
    its hard negatives.

    .. math::
        \ell_i = -\log \frac{e^{\cos(\hat y_i, y_i)/\tau}}
        {\sum_j e^{\cos(\hat y_i, y_j)/\tau} + \sum_k e^{\cos(\hat y_i, h_{ik})/\tau}}

    The candidates of row ``i`` are every target of the batch (``y_j``, in-batch
    negatives) and its own ``hard_negatives[i]`` (``[B, K, d]``; for a next-sentence
    predictor its context sentences, so that a prediction which copies the context scores
    low). A hard negative identical to the row's target (a repeated sentence) is left out,
    as it is no error to point at it. Vectors need not be unit length: cosines are used.

    Args:
        pred: predictions ``[B, d]``.
        target: the true next vectors ``[B, d]``.
        hard_negatives: optional ``[B, K, d]``.
        temperature: ``tau`` > 0, a float or a 0-dim tensor (a learned temperature).

    Stats: ``accuracy`` (share of rows whose target outscores every candidate),
    ``pos`` (mean cos to the target), ``hard`` (mean cos to the hard negatives, when given).

    >>> import torch
    >>> out = next_vector_info_nce(torch.eye(2), torch.eye(2), temperature=0.1)
    >>> [round(v, 5) for v in out.values.tolist()], float(out.stats["accuracy"])
    ([5e-05, 5e-05], 1.0)
    """
    if isinstance(temperature, float) and temperature <= 0:
        raise ValueError(f"next_vector_info_nce: temperature must be > 0, got {temperature}")
    if pred.shape != target.shape or pred.dim() != 2:
        raise ValueError(
            f"next_vector_info_nce: pred and target must both be [B, d], got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    pred_n, target_n = F.normalize(pred, dim=-1), F.normalize(target, dim=-1)
    cos = pred_n @ target_n.T  # [B, B]; the diagonal holds the positives
    columns = [cos]
    stats: dict[str, Tensor] = {}
    if hard_negatives is not None:
        hard_n = F.normalize(hard_negatives, dim=-1)
        hard = torch.einsum("bd,bkd->bk", pred_n, hard_n)
        same = torch.einsum("bd,bkd->bk", target_n, hard_n) > 1 - 1e-6
        columns.append(hard.masked_fill(same, -torch.inf))
        stats["hard"] = hard.detach().float().mean()
    logits = torch.cat(columns, dim=1) / temperature
    rows = torch.arange(len(pred), device=pred.device)
    values = F.cross_entropy(logits, rows, reduction="none")
    stats["accuracy"] = (logits.detach().argmax(1) == rows).float().mean()
    stats["pos"] = cos.detach().diagonal().float().mean()
    return TermOutput(values, stats)
