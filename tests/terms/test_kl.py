import math

import pytest
import torch
from torch import nn

from termwise.terms import bayes_layer_kl, free_bits_kl, gaussian_kl


def test_gaussian_kl_matches_hand_computation():
    mu = torch.tensor([[0.5, -1.0]])
    logvar = torch.tensor([[0.0, math.log(0.2)]])
    prior_var = 0.1
    out = gaussian_kl(mu, logvar, prior_var=prior_var)
    hand = 0.0
    for m, v in [(0.5, 1.0), (-1.0, 0.2)]:
        hand += 0.5 * (v / prior_var - 1 + math.log(prior_var) - math.log(v))
        hand += 0.5 * m * m / prior_var
    assert out.values.shape == (1,)
    assert out.values.item() == pytest.approx(hand, rel=1e-5)
    var_only = gaussian_kl(mu, logvar, prior_var=prior_var, regularize_mean=False)
    assert var_only.values.item() == pytest.approx(hand - 0.5 * (0.25 + 1.0) / prior_var, rel=1e-5)


def test_gaussian_kl_zero_at_prior_and_matches_torch_distributions():
    mu, logvar = torch.zeros(3, 4), torch.full((3, 4), math.log(0.1))
    assert gaussian_kl(mu, logvar, prior_var=0.1).values.abs().max().item() < 1e-6
    mu, logvar = torch.randn(5, 4), torch.randn(5, 4)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(4), torch.full((4,), 0.1**0.5))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(gaussian_kl(mu, logvar, prior_var=0.1).values, expected, atol=1e-5)


def test_gaussian_kl_std_to_mu_stat():
    out = gaussian_kl(torch.full((2, 3), 2.0), torch.full((2, 3), math.log(0.01)))
    assert out.stats["std_to_mu"].item() == pytest.approx(0.05, rel=1e-5)


def _uniform_kl(kl_per_token: float, n: int = 8, dims: int = 4) -> tuple[torch.Tensor, ...]:
    # With logvar = 0 the per-dim KL is mu^2 / 2, so mu = sqrt(2 kl) gives exactly kl.
    mu = torch.full((n, dims), math.sqrt(2 * kl_per_token))
    return mu, torch.zeros(n, dims)


@pytest.mark.parametrize(
    ("kl_raw", "free_bits", "kl_after", "reduction"),
    [
        (0.05, 0.1, 0.0, 1.0),
        (0.05, 0.02, 0.03, 0.4),
        (0.08, 0.02, 0.06, 0.25),
        (0.03, 0.02, 0.01, 2 / 3),
    ],
)
def test_free_bits_source_numbers(kl_raw, free_bits, kl_after, reduction):
    out = free_bits_kl(*_uniform_kl(kl_raw), free_bits=free_bits)
    assert out.stats["kl_raw"].item() == pytest.approx(kl_raw, rel=1e-5)
    assert out.stats["kl_after"].item() == pytest.approx(kl_after, abs=1e-6)
    assert out.stats["penalty_reduction"].item() == pytest.approx(reduction, rel=1e-4)
    assert out.stats["free_fraction"].item() == (1.0 if free_bits > kl_raw else 0.0)


def test_free_bits_gradient_is_zero_below_threshold():
    mu, logvar = _uniform_kl(0.05)
    mu.requires_grad_(True)
    free_bits_kl(mu, logvar, free_bits=0.1).values.sum().backward()
    assert mu.grad is not None and mu.grad.abs().max().item() == 0.0


def test_free_bits_per_dim_and_sum_dims():
    # dim 0 has KL 0.2, dim 1 has KL 0.0
    mu = torch.tensor([[math.sqrt(0.4), 0.0]])
    logvar = torch.zeros(1, 2)
    per_dim = free_bits_kl(mu, logvar, free_bits=0.05, reduce="per_dim")
    assert per_dim.values.item() == pytest.approx((0.2 - 0.05) / 2, rel=1e-5)
    assert per_dim.stats["free_fraction"].item() == 0.5
    mean_dims = free_bits_kl(mu, logvar, free_bits=0.05)
    assert mean_dims.values.item() == pytest.approx(0.1 - 0.05, rel=1e-5)
    sum_dims = free_bits_kl(mu, logvar, free_bits=0.05, reduce="sum_dims")
    assert sum_dims.values.item() == pytest.approx(0.2 - 0.05, rel=1e-5)
    with pytest.raises(ValueError, match="reduce"):
        free_bits_kl(mu, logvar, 0.1, reduce="max")  # type: ignore[arg-type]


def test_free_bits_matches_closed_form_kl_without_threshold():
    mu, logvar = torch.randn(6, 5), torch.randn(6, 5)
    out = free_bits_kl(mu, logvar, free_bits=0.0, reduce="sum_dims")
    expected = gaussian_kl(mu, logvar).values
    assert torch.allclose(out.values, expected, atol=1e-5)


class _ToyBayes(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def kl_divergence(self) -> torch.Tensor:
        return self.value * 2


def test_bayes_layer_kl_sums_protocol_layers():
    model = nn.Sequential(_ToyBayes(1.0), nn.Linear(2, 2), nn.Sequential(_ToyBayes(0.5)))
    total = bayes_layer_kl(model)
    assert total.item() == pytest.approx(3.0)
    total.backward()
    assert model[0].value.grad.item() == 2.0


def test_bayes_layer_kl_without_layers():
    with pytest.raises(ValueError, match="no Bayesian layer"):
        bayes_layer_kl(nn.Linear(2, 2))
    assert bayes_layer_kl(nn.Linear(2, 2), allow_empty=True).item() == 0.0
