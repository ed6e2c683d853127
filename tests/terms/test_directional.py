import math

import pytest
import torch
import torch.nn.functional as F

from termwise.terms import directional_margin


def test_value_at_zero_gap():
    v = torch.tensor([[1.0, 0.0, 0.0]])
    out = directional_margin(v, v, v)  # pos == neg -> gap 0
    assert out.values.item() == pytest.approx(math.log1p(math.exp(0.4)) / 8, abs=1e-6)
    assert out.values.item() == pytest.approx(0.1141, abs=1e-4)
    assert out.stats["gap"].item() == 0.0


def test_matches_formula_and_stats():
    pred = torch.tensor([[1.0, 1.0]])
    y_next, y_prev = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, -1.0]])
    out = directional_margin(pred, y_next, y_prev, margin=0.1, gamma=4.0)
    pos, neg = math.sqrt(0.5), -math.sqrt(0.5)
    assert out.stats["pos"].item() == pytest.approx(pos, rel=1e-6)
    assert out.stats["neg"].item() == pytest.approx(neg, rel=1e-6)
    expected = math.log1p(math.exp(4.0 * (0.1 - (pos - neg)))) / 4.0
    assert out.values.item() == pytest.approx(expected, rel=1e-5)


def test_random_triples_mean_is_above_zero_gap_value():
    # Convexity: E[softplus(g(m - gap))/g] > value at E[gap] = 0.
    gen = torch.Generator().manual_seed(0)
    pred, y_next, y_prev = (
        F.normalize(torch.randn(10_000, 384, generator=gen), dim=-1) for _ in range(3)
    )
    out = directional_margin(pred, y_next, y_prev)
    mean = out.values.double().mean()
    assert mean.item() == pytest.approx(0.119, abs=0.003)
    # Jensen against the sample's own mean gap, both sides in float64 (no band edge).
    gap = ((pred * y_next).sum(-1) - (pred * y_prev).sum(-1)).double().mean()
    assert mean > F.softplus(8.0 * (0.05 - gap)) / 8.0  # the defaults: margin 0.05, gamma 8
