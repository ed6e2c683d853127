import math

import pytest
import torch

from termwise.terms import bradley_terry, log_square, saturation_fraction, soft_cap


def test_bradley_terry_matches_formula():
    r_pos = torch.tensor([1.0, 0.0, -2.0])
    r_neg = torch.tensor([0.0, 0.0, 1.0])
    out = bradley_terry(r_pos, r_neg)
    expected = [math.log1p(math.exp(-1.0)), math.log(2.0), math.log1p(math.exp(3.0))]
    assert out.values.tolist() == pytest.approx(expected, rel=1e-6)
    assert out.stats["accuracy"].item() == pytest.approx(1 / 3)
    assert out.stats["mean_gap"].item() == pytest.approx((1 + 0 - 3) / 3)


def test_bradley_terry_weights_and_margin():
    r_pos, r_neg = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 0.0])
    out = bradley_terry(r_pos, r_neg, weight=torch.tensor([2.0, 0.5]), margin=0.5)
    base = math.log1p(math.exp(-0.5))
    assert out.values.tolist() == pytest.approx([2.0 * base, 0.5 * base], rel=1e-6)


def test_bradley_terry_label_smoothing_matches_formula_and_stops_at_its_optimum():
    eps = 0.1
    gap = torch.tensor([2.0, -1.0, math.log(0.9 / 0.1)], requires_grad=True)
    out = bradley_terry(gap, torch.zeros(3), margin=0.5, label_smoothing=eps)
    d = [1.5, -1.5, math.log(9.0) - 0.5]
    expected = [(1 - eps) * math.log1p(math.exp(-x)) + eps * math.log1p(math.exp(x)) for x in d]
    assert out.values.tolist() == pytest.approx(expected, rel=1e-6)
    plain = bradley_terry(torch.tensor([20.0]), torch.zeros(1), label_smoothing=0.0)
    smoothed = bradley_terry(torch.tensor([20.0]), torch.zeros(1), label_smoothing=eps)
    assert smoothed.values.item() > 1.0 > plain.values.item()  # a huge gap now costs
    at_optimum = torch.tensor([math.log(9.0)], requires_grad=True)
    bradley_terry(at_optimum, torch.zeros(1), label_smoothing=eps).values.sum().backward()
    assert abs(at_optimum.grad.item()) < 1e-6


@pytest.mark.parametrize("eps", [-0.1, 0.5])
def test_bradley_terry_rejects_label_smoothing_outside_its_range(eps):
    with pytest.raises(ValueError, match="label_smoothing"):
        bradley_terry(torch.zeros(1), torch.zeros(1), label_smoothing=eps)


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_bradley_terry_stable_at_large_scores(scale):
    r_pos = torch.tensor([scale], requires_grad=True)
    out = bradley_terry(r_pos, torch.tensor([-scale]))
    out.values.sum().backward()
    assert torch.isfinite(out.values).all() and torch.isfinite(r_pos.grad).all()
    expected = 0.0 if scale > 0 else 2e4
    assert out.values.item() == pytest.approx(expected, abs=1e-3)


def test_log_square_values_at_source_points():
    out = log_square(torch.tensor([1.0, 0.1, 10.0, -1.0]))
    assert out.values.tolist() == pytest.approx([0.0, 4.605, 4.605, 0.0], abs=2e-3)
    squared = log_square(torch.tensor([1.0, 0.1, 10.0]), form="squared")
    assert squared.values.tolist() == pytest.approx([0.0, 4.605**2 / 4, 4.605**2 / 4], abs=5e-3)


@pytest.mark.parametrize("form", ["abs", "squared"])
@pytest.mark.parametrize("start", [0.1, 10.0])
def test_log_square_gradient_descent_moves_score_to_one(form, start):
    r = torch.tensor([start], requires_grad=True)
    optimizer = torch.optim.SGD([r], lr=0.02 if form == "abs" else 0.05)
    for _ in range(3000):
        optimizer.zero_grad()
        log_square(r, form=form).values.sum().backward()
        optimizer.step()
    assert abs(r.item() - 1.0) < 0.05


def test_literal_formula_would_pull_scores_to_zero():
    # The documented reason for the abs form: log(r^2 + eps) decreases towards r = 0, so its
    # gradient at a positive score below 1 pushes the score down; the abs form pushes it up.
    r = torch.tensor([0.5], requires_grad=True)
    torch.log(r * r + 1e-6).sum().backward()
    assert r.grad is not None and r.grad.item() > 0
    r.grad = None
    log_square(r).values.sum().backward()
    assert r.grad.item() < 0


def test_log_square_rejects_unknown_form():
    with pytest.raises(ValueError, match="form"):
        log_square(torch.ones(1), form="cube")  # type: ignore[arg-type]


def test_soft_cap():
    scores = torch.tensor([0.0, 1.0, 100.0, -100.0])
    capped = soft_cap(scores, 10.0)
    assert capped.tolist() == pytest.approx([0.0, 10 * math.tanh(0.1), 10.0, -10.0], rel=1e-5)
    assert soft_cap(scores, 0.0) is scores
    assert saturation_fraction(capped, 10.0).item() == pytest.approx(0.5)
    assert saturation_fraction(scores, 0.0).item() == 0.0


def test_positive_form_has_its_only_minimum_near_plus_one():
    r = torch.linspace(-3, 3, 601)
    values = log_square(r, form="positive").values
    best = r[values.argmin()].item()
    assert best == pytest.approx(1.0, abs=0.02)
    assert values[r < 0].min() > values[r > 0.9].min() + 1.0  # no second minimum at -1
    symmetric = log_square(r).values
    assert symmetric[r.sub(-1).abs().argmin()] < 0.01  # the abs form's second minimum
    start = torch.tensor([-1.0], requires_grad=True)
    optimizer = torch.optim.SGD([start], lr=0.05)
    for _ in range(2000):
        optimizer.zero_grad()
        log_square(start, form="positive").values.sum().backward()
        optimizer.step()
    assert abs(start.item() - 1.0) < 0.05
