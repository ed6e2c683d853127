import pytest
import torch
import torch.nn.functional as F
from torch import nn

from termwise.models import BayesLinear
from termwise.terms import bayes_layer_kl


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    layer = BayesLinear(4, 3, prior_sigma=0.5, posterior_std_init=0.1)
    with torch.no_grad():
        layer.weight_rho.normal_()
    mu = torch.cat([layer.weight_mu.flatten(), layer.bias_mu])
    sigma = F.softplus(torch.cat([layer.weight_rho.flatten(), layer.bias_rho]))
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, sigma), torch.distributions.Normal(0.0, 0.5)
    ).sum()
    assert layer.kl_divergence().item() == pytest.approx(expected.item(), rel=1e-5)


def test_kl_is_zero_at_the_prior_and_protocol_sums_layers():
    layer = BayesLinear(2, 2, prior_sigma=0.3, posterior_std_init=0.3)
    with torch.no_grad():
        layer.weight_mu.zero_()
        layer.bias_mu.zero_()
    assert layer.kl_divergence().item() == pytest.approx(0.0, abs=1e-5)
    model = nn.Sequential(BayesLinear(3, 4), nn.ReLU(), BayesLinear(4, 2))
    assert bayes_layer_kl(model).item() == pytest.approx(
        model[0].kl_divergence().item() + model[2].kl_divergence().item()
    )


def test_sampling_in_training_mean_in_eval_and_gradients_reach_rho():
    torch.manual_seed(0)
    layer = BayesLinear(3, 2, posterior_std_init=0.5)
    x = torch.randn(5, 3)
    assert not torch.equal(layer(x), layer(x))  # two weight draws
    layer.eval()
    assert torch.equal(layer(x), F.linear(x, layer.weight_mu, layer.bias_mu))
    layer.sample = True
    assert not torch.equal(layer(x), layer(x))
    layer.train()
    (layer(x).square().sum() + layer.kl_divergence()).backward()
    assert layer.weight_rho.grad is not None and layer.weight_rho.grad.abs().sum() > 0


def test_posterior_std_init_and_validation():
    layer = BayesLinear(2, 2, posterior_std_init=0.01)
    assert F.softplus(layer.weight_rho).mean().item() == pytest.approx(0.01, rel=1e-4)
    with pytest.raises(ValueError):
        BayesLinear(2, 2, prior_sigma=0.0)
