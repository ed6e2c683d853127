"""Bradley-Terry and log-square terms for many heads at once, with per-head masking."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from termwise.terms.ranking import LogSquareForm, log_square


class MultiHeadTerms(NamedTuple):
    """Per-head values (shape ``[heads]``); a head is ``active`` when the batch holds at
    least one of its positives and one of its negatives, and contributes nothing otherwise."""

    bradley_terry: Tensor
    log_square: Tensor
    active: Tensor
    pair_accuracy: Tensor
    pairs: Tensor
    target_gap: Tensor  # mean log(r^2) of each head's positives: 0 when they sit at |r| = 1


def multihead_bradley_terry(
    scores: Tensor,
    positive: Tensor,
    negative_weight: Tensor,
    eps: float = 1e-6,
    log_square_form: LogSquareForm = "abs",
    hard_gamma: float = 0.0,
) -> MultiHeadTerms:
    r"""Every (positive, negative) pair of every head, vectorised over pairs and heads.

    ``scores``: ``[batch, heads]``; ``positive``: bool ``[batch, heads]``;
    ``negative_weight``: ``[batch, heads]``, the tier weight of a negative, 0 where the
    example is not a negative of that head. Per head h:

    .. math::
        BT_h = \frac{\sum_{p \in P_h, n \in N_h} w_n \, (-\log\sigma(r_p - r_n))}
                    {\sum_{p \in P_h, n \in N_h} w_n},
        \qquad LS_h = \frac{1}{|P_h|} \sum_{p \in P_h} |\log(r_p^2 + \epsilon)|

    Only positives are regularised towards |r| = 1; negatives are free to go low.
    ``log_square_form`` picks the :func:`log_square` form (``positive`` pins r ~ +1).
    ``hard_gamma`` > 0 weights each pair's loss by its current difficulty,
    ``(2 sigma(r_n - r_p))^gamma`` (not differentiated; 1 at a tie, towards 0 for a pair
    already far apart, up to ``2^gamma`` for a wrong one), as the focal loss does, while
    the mean stays over the tier weights: a tier that is easy for most heads but hard for
    one (news against modern web news) keeps its pull where it is still hard.
    Inactive heads get 0 (and ``active`` False), so masking needs no Python branch.

    >>> import torch
    >>> scores = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-1.0, 1.0]])  # 3 texts, 2 heads
    >>> positive = torch.tensor([[True, False], [False, False], [False, True]])
    >>> negative_weight = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    >>> terms = multihead_bradley_terry(scores, positive, negative_weight)
    >>> [round(v, 3) for v in terms.bradley_terry.tolist()], terms.pairs.tolist()
    ([0.125, 0.265], [2.0, 2.0])
    """
    pos = positive.to(scores.dtype)
    gap = scores[:, None, :] - scores[None, :, :]  # [p, n, heads]: r_p - r_n
    weight = pos[:, None, :] * negative_weight.to(scores.dtype)[None, :, :]
    pair_weight = weight.sum(dim=(0, 1))
    loss_weight = weight
    if hard_gamma > 0:
        loss_weight = weight * (2 * torch.sigmoid(-gap.detach())) ** hard_gamma
    bt = (-F.logsigmoid(gap) * loss_weight).sum(dim=(0, 1)) / pair_weight.clamp_min(eps)
    positives = pos.sum(dim=0)
    logsq = (log_square(scores, eps, log_square_form).values * pos).sum(
        dim=0
    ) / positives.clamp_min(1.0)
    log_r2 = torch.log(scores.detach().square() + eps)
    target_gap = (log_r2 * pos).sum(dim=0) / positives.clamp_min(1.0)
    active = (positives > 0) & ((negative_weight > 0).any(dim=0))
    correct = ((gap.detach() > 0).to(scores.dtype) * weight.detach()).sum(dim=(0, 1))
    accuracy = correct / pair_weight.detach().clamp_min(eps)
    zero = torch.zeros_like(bt)
    return MultiHeadTerms(
        torch.where(active, bt, zero),
        torch.where(active, logsq, zero),
        active,
        accuracy.detach(),
        (pos[:, None, :] * (negative_weight > 0).to(scores.dtype)[None]).sum((0, 1)).detach(),
        target_gap,
    )
