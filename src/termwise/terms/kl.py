"""KL terms: Gaussian KL to a prior, free-bits KL, and the Bayesian-layer KL protocol."""

from __future__ import annotations

import math
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from termwise.terms._output import TermOutput
from termwise.terms.stats import (
    FREE_BITS,
    FREE_FRACTION,
    KL_AFTER,
    KL_RAW,
    PENALTY_REDUCTION,
    STD_TO_MU,
)

FreeBitsReduce = Literal["mean_dims", "per_dim", "sum_dims"]


def gaussian_kl_per_dim(
    mu: Tensor, logvar: Tensor, prior_var: float = 1.0, regularize_mean: bool = True
) -> Tensor:
    r"""The one Gaussian KL formula: KL( N(mu_d, exp(logvar_d)) || N(0, prior_var) ) for
    each dimension, in nats, the shape of ``mu`` (the mean part only when
    ``regularize_mean``).

    >>> import torch
    >>> gaussian_kl_per_dim(torch.tensor([0.0, 1.0]), torch.zeros(2))
    tensor([0.0000, 0.5000])
    """
    per_dim = 0.5 * (logvar.exp() / prior_var - 1.0 + math.log(prior_var) - logvar)
    if regularize_mean:
        per_dim = per_dim + 0.5 * mu.square() / prior_var
    return per_dim


def free_bits_raw_kl(mu: Tensor, logvar: Tensor, reduce: FreeBitsReduce) -> Tensor:
    """The KL values :func:`free_bits_kl` compares with its threshold, in its units: per
    dimension (``per_dim``), the mean over dimensions (``mean_dims``) or their sum.

    >>> import torch
    >>> free_bits_raw_kl(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2), "sum_dims").tolist()
    [0.5]
    """
    per_dim = gaussian_kl_per_dim(mu, logvar)
    if reduce == "per_dim":
        return per_dim
    return per_dim.mean(-1) if reduce == "mean_dims" else per_dim.sum(-1)


def gaussian_kl(
    mu: Tensor,
    logvar: Tensor,
    prior_var: float = 1.0,
    regularize_mean: bool = True,
) -> TermOutput:
    r"""KL( N(mu, exp(logvar)) || N(0, prior_var) ) per example, summed over the last dim.

    .. math::
        \tfrac12 \sum_d \Big(\tfrac{\sigma_d^2}{\sigma_p^2} - 1 + \log\sigma_p^2
        - \log\sigma_d^2\Big) \;+\; \tfrac12 \sum_d \tfrac{\mu_d^2}{\sigma_p^2}

    The mean part is added only when ``regularize_mean`` is true; without it the term
    regularises the posterior variance alone (useful when the mean is normalised later and
    its scale carries no meaning).

    Pass the AMBIENT parameters, before any normalisation. When a sample is
    ``v = normalize(mu + eps * sigma)``, the Gaussian lives in the ambient space and the
    normalisation is a deterministic map applied afterwards. The KL of a "normalised"
    Gaussian (``normalize(mu)`` with the same ``logvar``) is not the KL of any distribution
    the model samples from: its mean term is the constant ``0.5 / prior_var`` (|mu| = 1),
    so it neither regularises nor reports anything, and the variance it sees is measured
    against a unit-norm mean it was never compared with.

    Stats: ``kl`` (batch mean), ``mean_std``, ``mean_abs_mu``, ``std_to_mu`` (mean sigma
    over mean |mu|: when it collapses towards zero, the noise no longer matters after
    normalisation and a "Bayesian" model has become deterministic).

    >>> import torch
    >>> out = gaussian_kl(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2))
    >>> out.values.tolist(), float(out.stats["mean_std"])
    ([0.5], 1.0)
    """
    if prior_var <= 0:
        raise ValueError(f"gaussian_kl: prior_var must be > 0, got {prior_var}")
    values = gaussian_kl_per_dim(mu, logvar, prior_var, regularize_mean).sum(dim=-1)
    std = (0.5 * logvar.detach()).exp().float()
    abs_mu = mu.detach().abs().float()
    stats = {
        "kl": values.detach().float().mean(),
        "mean_std": std.mean(),
        "mean_abs_mu": abs_mu.mean(),
        STD_TO_MU: std.mean() / abs_mu.mean().clamp_min(1e-12),
    }
    return TermOutput(values, stats)


def free_bits_kl(
    mu: Tensor,
    logvar: Tensor,
    free_bits: float | Tensor,
    reduce: FreeBitsReduce = "mean_dims",
) -> TermOutput:
    r"""KL to N(0, I) with a free-bits threshold: KL below ``free_bits`` costs nothing.

    Per latent dimension :math:`k_d = -\tfrac12 (1 + \log\sigma_d^2 - \mu_d^2 - \sigma_d^2)`.
    ``reduce`` says where the threshold applies (``values`` has the batch shape,
    i.e. ``mu.shape[:-1]``, one value per token):

    * ``"mean_dims"`` (default): ``kl = mean_d k_d`` per token, ``clamp(kl - free_bits, 0)``.
      ``free_bits`` is in nats per dimension, averaged.
    * ``"per_dim"`` (Kingma et al. 2016): ``clamp(k_d - free_bits, 0)`` for each dimension,
      then the mean over dims. Same units as ``mean_dims``; a dimension below the threshold
      gets no KL gradient even when its neighbours are above it.
    * ``"sum_dims"``: ``kl = sum_d k_d`` per token; ``free_bits`` is in nats per token.

    The clamp means the KL gradient is exactly zero wherever the KL is under the threshold:
    if ``free_bits`` is above the KL the model actually has, the term is silently inert.

    Stats (0-dim, detached): ``kl_raw`` and ``kl_after`` (means over tokens, in the units of
    ``reduce``), ``penalty_reduction = (kl_raw - kl_after) / kl_raw`` (0 when kl_raw = 0),
    ``free_fraction`` (share of tokens, or of (token, dim) entries for ``per_dim``, under
    the threshold, i.e. with zero KL gradient) and ``free_bits``.

    >>> import torch
    >>> out = free_bits_kl(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2), free_bits=0.1)
    >>> [round(v, 3) for v in out.values.tolist()], round(float(out.stats["penalty_reduction"]), 3)
    ([0.15], 0.4)
    """
    per_dim = gaussian_kl_per_dim(mu, logvar)
    if reduce == "per_dim":
        after_dims = torch.clamp(per_dim - free_bits, min=0.0)
        raw = per_dim.mean(dim=-1)
        values = after_dims.mean(dim=-1)
        below = per_dim.detach() < free_bits
    elif reduce in ("mean_dims", "sum_dims"):
        raw = per_dim.mean(dim=-1) if reduce == "mean_dims" else per_dim.sum(dim=-1)
        values = torch.clamp(raw - free_bits, min=0.0)
        below = raw.detach() < free_bits
    else:
        raise ValueError(
            f"free_bits_kl: reduce must be 'mean_dims', 'per_dim' or 'sum_dims', got {reduce!r}"
        )
    kl_raw = raw.detach().float().mean()
    kl_after = values.detach().float().mean()
    reduction = torch.where(kl_raw > 0, (kl_raw - kl_after) / kl_raw.clamp_min(1e-12), 0.0)
    stats = {
        KL_RAW: kl_raw,
        KL_AFTER: kl_after,
        PENALTY_REDUCTION: reduction,
        FREE_FRACTION: below.float().mean(),
        FREE_BITS: torch.as_tensor(free_bits, dtype=torch.float32, device=mu.device),
    }
    return TermOutput(values, stats)


@runtime_checkable
class BayesianLayer(Protocol):
    """A layer with a weight posterior. ``kl_divergence()`` returns KL(q(w) || p(w)) as a
    0-dim tensor summed over the layer's parameters (differentiable)."""

    def kl_divergence(self) -> Tensor: ...


def bayes_layer_kl(module: nn.Module, allow_empty: bool = False) -> Tensor:
    """Summed KL of every :class:`BayesianLayer` inside ``module`` (itself included).

    Raises ``ValueError`` when the module contains none, unless ``allow_empty``: a model
    that was meant to be Bayesian but is not would otherwise train with a KL of silently 0.
    """
    kls = [m.kl_divergence() for m in module.modules() if isinstance(m, BayesianLayer)]
    if not kls:
        if allow_empty:
            device = next((p.device for p in module.parameters()), torch.device("cpu"))
            return torch.zeros((), device=device)
        raise ValueError(
            f"bayes_layer_kl: {type(module).__name__} contains no Bayesian layer "
            "(no submodule defines kl_divergence()); pass allow_empty=True if that is intended"
        )
    return torch.stack(kls).sum()
