"""Directional margin loss for next-vector prediction."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from termwise.terms._output import TermOutput


def directional_margin(
    pred: Tensor,
    y_next: Tensor,
    y_prev: Tensor,
    margin: float | Tensor = 0.05,
    gamma: float = 8.0,
) -> TermOutput:
    r"""Smooth margin asking the prediction to point more at the next vector than the previous.

    .. math::
        g = \cos(\hat y, y_{t+1}) - \cos(\hat y, y_{t-1}), \qquad
        \ell = \mathrm{softplus}(\gamma (m - g)) / \gamma

    A soft hinge: as ``gamma`` grows it tends to ``max(0, m - g)``; at ``g = 0`` it is
    ``softplus(gamma * m) / gamma`` (0.1141 for the defaults). Vectors are compared over the
    last dim; ``values`` has the batch shape.

    Stats: ``pos`` (mean cos to the next vector), ``neg`` (mean cos to the previous one),
    ``gap`` (mean of their difference).

    >>> import torch
    >>> pred, after = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.6, 0.8]])
    >>> before = torch.tensor([[0.0, 1.0]])
    >>> out = directional_margin(pred, after, before, margin=0.05, gamma=8.0)
    >>> round(out.values.item(), 4), round(float(out.stats["gap"]), 2)
    (0.0015, 0.6)
    """
    if gamma <= 0:
        raise ValueError(f"directional_margin: gamma must be > 0, got {gamma}")
    pos = F.cosine_similarity(pred, y_next, dim=-1)
    neg = F.cosine_similarity(pred, y_prev, dim=-1)
    gap = pos - neg
    values = F.softplus(gamma * (margin - gap)) / gamma
    stats = {
        "pos": pos.detach().float().mean(),
        "neg": neg.detach().float().mean(),
        "gap": gap.detach().float().mean(),
    }
    return TermOutput(values, stats)
