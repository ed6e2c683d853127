"""Ranking terms for reward models: Bradley-Terry, the log-square regulariser, the soft cap."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from termwise.terms._output import TermOutput
from termwise.terms.stats import TARGET_GAP


def bradley_terry(
    r_pos: Tensor,
    r_neg: Tensor,
    weight: Tensor | None = None,
    margin: float | Tensor = 0.0,
    label_smoothing: float = 0.0,
) -> TermOutput:
    r"""Bradley-Terry ranking loss per pair.

    .. math:: \ell_i = -w_i [(1 - \epsilon) \log \sigma(d_i) + \epsilon \log \sigma(-d_i)],
        \quad d_i = r^+_i - r^-_i - m_i

    ``logsigmoid`` is used rather than ``log(sigmoid(.))`` so the loss stays finite and
    exact at |r| = 1e4 (it becomes ``-x`` for very negative ``x`` instead of ``log(0)``).

    Args:
        r_pos: scores of the preferred items, any shape.
        r_neg: scores of the dispreferred items, broadcastable to ``r_pos``.
        weight: optional per-pair weights (e.g. negative-tier weights), broadcastable.
            The values are ``w * loss``; a weighted mean is ``values.sum() / w.sum()``.
        margin: required score gap, scalar or per pair.
        label_smoothing: epsilon, the probability that a label is flipped (0: plain
            Bradley-Terry). The loss is then least at ``d = log((1 - eps) / eps)``, so easy
            pairs stop pushing their gap (and the model's confidence) up without bound; as
            TRL's DPO ``label_smoothing`` (the conservative loss).

    Stats: ``accuracy`` (share of pairs ranked correctly, r+ > r-), ``mean_gap``.

    >>> import torch
    >>> out = bradley_terry(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]))
    >>> [round(v, 4) for v in out.values.tolist()], float(out.stats["accuracy"])
    ([0.1269, 0.6931], 0.5)
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    gap = r_pos - r_neg
    values = -F.logsigmoid(gap - margin)
    if label_smoothing:
        values = (1 - label_smoothing) * values - label_smoothing * F.logsigmoid(margin - gap)
    if weight is not None:
        values = values * weight
    detached = gap.detach()
    stats = {
        "accuracy": (detached > 0).float().mean(),
        "mean_gap": detached.float().mean(),
    }
    return TermOutput(values, stats)


LogSquareForm = Literal["abs", "squared", "positive"]
POSITIVE_SHARPNESS = 4.0  # softplus(4 r) / 4 is within 0.5 % of r at r = 1


def log_square(r: Tensor, eps: float = 1e-6, form: LogSquareForm = "abs") -> TermOutput:
    r"""Regulariser that holds (positive-example) scores near :math:`|r| = 1`.

    ``form="abs"`` (default): :math:`|\log(r^2 + \epsilon)|`, which is 0 at |r| = 1 and
    4.6 at r = 0.1 and at r = 10. ``form="squared"``: :math:`\log(r^2 + \epsilon)^2 / 4`,
    smooth at the optimum (same zeros, gradient that shrinks near |r| = 1).

    Why not the literal source formula :math:`\log(r^2+\epsilon)`: it is monotone in |r|,
    so its minimum is at r -> 0 (value log(eps) = -13.8), and gradient descent on it pulls
    every positive score towards zero, the opposite of the intended "optimal at |r| = 1,
    penalised at 0.1 and at 10". Taking the absolute value keeps the source's numbers
    (0, -4.6 -> 4.6, 4.6) as a penalty magnitude with its minimum where intended.

    Note ``r = 0`` exactly is a stationary point of both forms (the gradient is 0 there);
    any non-zero start moves towards |r| = 1.

    Both forms are symmetric: r = -1 is as good as r = +1. Under a Bradley-Terry term, which
    sees only score differences, a head may then park its positives at -1. ``form="positive"``
    applies the abs form to ``softplus(4 r) / 4``: the same values for r around 1, but
    increasing all the way down through 0 and the negatives, so the only minimum is r ~ +1.

    Stats: ``mean_abs_score``, ``target_gap`` (mean ``log(r^2)``, signed: 0 when scores sit
    at |r| = 1; the health monitor reads it to tell a satisfied regulariser from a weak one).

    >>> import torch
    >>> [round(v, 2) for v in log_square(torch.tensor([1.0, 0.1, 10.0])).values.tolist()]
    [0.0, 4.61, 4.61]
    """
    if form == "positive":
        r = F.softplus(POSITIVE_SHARPNESS * r) / POSITIVE_SHARPNESS
    log_r2 = torch.log(r * r + eps)
    if form in ("abs", "positive"):
        values = log_r2.abs()
    elif form == "squared":
        values = log_r2.square() / 4.0
    else:
        raise ValueError(f"log_square: form must be abs, squared or positive, got {form!r}")
    stats = {
        "mean_abs_score": r.detach().abs().float().mean(),
        TARGET_GAP: log_r2.detach().float().mean(),
    }
    return TermOutput(values, stats)


def soft_cap(scores: Tensor, cap: float) -> Tensor:
    r"""Soft logit cap :math:`c \tanh(s / c)`: near-identity for |s| << c, bounded by c.

    ``cap <= 0`` disables the cap and returns ``scores`` unchanged.

    >>> import torch
    >>> [round(v, 3) for v in soft_cap(torch.tensor([0.5, 100.0]), cap=5.0).tolist()]
    [0.498, 5.0]
    """
    if cap <= 0:
        return scores
    return cap * torch.tanh(scores / cap)


def saturation_fraction(scores: Tensor, cap: float, threshold: float = 0.9) -> Tensor:
    """Share of scores with ``|score| > threshold * cap`` (0-dim, detached).

    The health rule ``logits.saturated`` reads it: a capped score near the cap has
    almost no gradient (tanh' -> 0), so a high share means the head stopped learning.
    Returns 0 when the cap is disabled.

    >>> import torch
    >>> float(saturation_fraction(torch.tensor([0.5, 4.9]), cap=5.0))
    0.5
    """
    if cap <= 0:
        return torch.zeros((), device=scores.device)
    return (scores.detach().abs() > threshold * cap).float().mean()
