"""General Preference Model terms (Zhang et al. 2024): skew-symmetric preference scores.

A response is a unit vector ``v`` in ``2k`` dimensions. The score of ``a`` over ``b`` is
``s(a, b) = <R v_a, v_b>`` with ``R`` block-diagonal of ``k`` blocks ``[[0, -1], [1, 0]]``
(optionally block ``j`` scaled by ``lambda_j``). Because ``R^T = -R``,
``s(a, b) = -s(b, a)``: the model can express cyclic preferences (A > B > C > A), which no
scalar reward can.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from termwise.terms._output import TermOutput
from termwise.terms.stats import TARGET_GAP


def gpm_score(v_a: Tensor, v_b: Tensor, block_scale: Tensor | None = None) -> Tensor:
    r"""``s(a, b) = <R v_a, v_b>`` per example, over the last dim (size ``2k``).

    Per block ``j`` with components ``(a_0, a_1)``, ``(b_0, b_1)``:
    :math:`R_j a = (-a_1, a_0)`, so :math:`s_j = a_0 b_1 - a_1 b_0`, scaled by
    ``block_scale[..., j]`` when given. Computed that way (not with a dense ``R``) the
    result is exactly antisymmetric in floating point: swapping ``a`` and ``b`` swaps the
    two products of each difference, which negates it exactly.

    >>> import torch
    >>> a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    >>> gpm_score(a, b).tolist(), gpm_score(b, a).tolist()
    ([1.0], [-1.0])
    """
    if v_a.shape[-1] % 2:
        raise ValueError(f"gpm_score: the embedding size must be even, got {v_a.shape[-1]}")
    a = v_a.unflatten(-1, (-1, 2))
    b = v_b.unflatten(-1, (-1, 2))
    per_block = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    if block_scale is not None:
        per_block = per_block * block_scale
    return per_block.sum(-1)


def gpm_loss(
    v_chosen: Tensor,
    v_rejected: Tensor,
    tau: float = 0.1,
    block_scale: Tensor | None = None,
    margin: float | Tensor = 0.0,
) -> TermOutput:
    r"""Negative log-likelihood of ``P(chosen > rejected) = sigmoid(s / tau)`` per pair.

    .. math:: \ell_i = -\log\sigma\big(s(c_i, r_i) / \tau - m_i\big)

    Stats: ``accuracy`` (s > 0 strictly), ``mean_score`` (``s / tau``).

    >>> import torch
    >>> out = gpm_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), tau=1.0)
    >>> round(out.values.item(), 4), float(out.stats["accuracy"])
    (0.3133, 1.0)
    """
    logit = gpm_score(v_chosen, v_rejected, block_scale) / tau
    values = -F.logsigmoid(logit - margin)
    detached = logit.detach().float()
    return TermOutput(
        values, {"accuracy": (detached > 0).float().mean(), "mean_score": detached.mean()}
    )


def reward_centering(r_chosen: Tensor, r_rejected: Tensor) -> TermOutput:
    r"""TRL's centring regulariser per pair: :math:`(r_c + r_r)^2` (Eisenstein et al. 2023).

    With weight ``coef`` it adds ``coef * mean((r_c + r_r)^2)``, pinning the reward's
    zero so rewards of different runs stay comparable; the pair ranking is unchanged.

    Stats: ``mean_reward``, also as ``target_gap`` (what the term regularises: 0 when the
    rewards are centred). A centred run's term is small by design (TRL's 0.01 gives it well
    under 1 % of the total); the health monitor reads the gap (centred within about half a
    logit) instead of asking for a weight that would change nothing.

    >>> import torch
    >>> reward_centering(torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.0])).values.tolist()
    [0.0, 4.0]
    """
    values = (r_chosen + r_rejected).square()
    mean = (r_chosen + r_rejected).detach().float().mean() / 2
    return TermOutput(values, {"mean_reward": mean, TARGET_GAP: mean})
