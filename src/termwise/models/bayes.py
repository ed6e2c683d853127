"""Bayesian layers: mean-field Gaussian weight posteriors trained by reparameterisation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from termwise.terms import gaussian_kl


def softplus_inverse(value: float) -> float:
    """``rho`` with ``softplus(rho) = value``."""
    return value + math.log(-math.expm1(-value))


class BayesLinear(nn.Module):
    """``y = x W^T + b`` with ``W ~ N(mu, sigma^2)`` elementwise, ``sigma = softplus(rho)``.

    Each training forward draws one weight sample (reparameterised, so gradients reach
    ``mu`` and ``rho``); in eval mode the posterior mean is used, unless ``sample=True``.
    The prior is ``N(0, prior_sigma^2)`` on every weight and bias. Implements the
    :class:`termwise.terms.BayesianLayer` protocol: :meth:`kl_divergence` is the closed-form
    KL of the posterior to the prior, summed over all parameters.

    Initialisation: means as ``nn.Linear`` (Kaiming-uniform), standard deviations
    ``posterior_std_init`` (small, 1e-3 by default: starting with prior-sized noise on
    every weight drowns the signal before the means have learned anything).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        prior_sigma: float = 1.0,
        posterior_std_init: float = 1e-3,
    ) -> None:
        super().__init__()
        if prior_sigma <= 0 or posterior_std_init <= 0:
            raise ValueError("BayesLinear: prior_sigma and posterior_std_init must be > 0")
        self.in_features, self.out_features = in_features, out_features
        self.prior_sigma = prior_sigma
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_rho = nn.Parameter(torch.empty(out_features, in_features))
        self.bias_mu = nn.Parameter(torch.empty(out_features)) if bias else None
        self.bias_rho = nn.Parameter(torch.empty(out_features)) if bias else None
        self.sample = False
        self.reset_parameters(posterior_std_init)

    def reset_parameters(self, posterior_std_init: float = 1e-3) -> None:
        nn.init.kaiming_uniform_(self.weight_mu, a=math.sqrt(5))
        nn.init.constant_(self.weight_rho, softplus_inverse(posterior_std_init))
        if self.bias_mu is not None and self.bias_rho is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias_mu, -bound, bound)
            nn.init.constant_(self.bias_rho, softplus_inverse(posterior_std_init))

    def _draw(self, mu: Tensor, rho: Tensor) -> Tensor:
        if not (self.training or self.sample):
            return mu
        return mu + F.softplus(rho) * torch.randn_like(mu)

    def forward(self, x: Tensor) -> Tensor:
        weight = self._draw(self.weight_mu, self.weight_rho)
        bias = None
        if self.bias_mu is not None and self.bias_rho is not None:
            bias = self._draw(self.bias_mu, self.bias_rho)
        return F.linear(x, weight, bias)

    def kl_divergence(self) -> Tensor:
        mus = [self.weight_mu.flatten()]
        sigmas = [F.softplus(self.weight_rho).flatten()]
        if self.bias_mu is not None and self.bias_rho is not None:
            mus.append(self.bias_mu)
            sigmas.append(F.softplus(self.bias_rho))
        mu, sigma = torch.cat(mus), torch.cat(sigmas)
        logvar = 2 * torch.log(sigma)
        return gaussian_kl(mu[None], logvar[None], prior_var=self.prior_sigma**2).values[0]

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias_mu is not None}, prior_sigma={self.prior_sigma}"
        )
