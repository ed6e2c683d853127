import math

import pytest
import torch

from termwise.terms import multihead_bradley_terry


def softplus_neg(x: float) -> float:
    return math.log1p(math.exp(-x))  # -log sigmoid(x)


def test_masking_and_tier_weights_against_hand_computation():
    # 3 examples, 2 heads. Head 0: example 0 positive; 1 (weight 2) and 2 (weight 0.5)
    # negatives. Head 1: no positive in the batch -> inactive.
    scores = torch.tensor([[1.0, 0.3], [0.2, -0.1], [-0.5, 0.4]])
    positive = torch.tensor([[True, False], [False, False], [False, False]])
    negative_weight = torch.tensor([[0.0, 0.0], [2.0, 1.0], [0.5, 1.0]])
    out = multihead_bradley_terry(scores, positive, negative_weight)
    expected = (2.0 * softplus_neg(1.0 - 0.2) + 0.5 * softplus_neg(1.0 + 0.5)) / 2.5
    assert out.bradley_terry[0].item() == pytest.approx(expected, rel=1e-6)
    assert out.log_square[0].item() == pytest.approx(abs(math.log(1.0 + 1e-6)), abs=1e-5)
    assert out.active.tolist() == [True, False]
    assert out.bradley_terry[1].item() == 0.0 and out.log_square[1].item() == 0.0
    assert out.pair_accuracy[0].item() == pytest.approx(1.0)
    assert out.pairs.tolist() == [2.0, 0.0]


def test_only_positives_are_regularised_and_gradients_flow():
    scores = torch.tensor([[0.1], [5.0]], requires_grad=True)
    out = multihead_bradley_terry(
        scores, torch.tensor([[True], [False]]), torch.tensor([[0.0], [1.0]])
    )
    assert out.log_square.item() == pytest.approx(abs(math.log(0.01 + 1e-6)), rel=1e-4)
    (out.bradley_terry + out.log_square).sum().backward()
    assert scores.grad[0, 0] < 0  # push the positive up
    assert scores.grad[1, 0] > 0  # push the negative down


def test_vectorised_matches_loop():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(8, 3, generator=gen)
    positive = torch.rand(8, 3, generator=gen) > 0.6
    negative_weight = torch.where(
        ~positive & (torch.rand(8, 3, generator=gen) > 0.3), torch.tensor(1.5), torch.tensor(0.0)
    )
    out = multihead_bradley_terry(scores, positive, negative_weight)
    for h in range(3):
        num = den = 0.0
        for p in range(8):
            for n in range(8):
                w = float(positive[p, h]) * negative_weight[n, h].item()
                num += w * softplus_neg((scores[p, h] - scores[n, h]).item())
                den += w
        if den:
            assert out.bradley_terry[h].item() == pytest.approx(num / den, rel=1e-5)


def test_hard_gamma_weights_pairs_by_difficulty_over_the_tier_weights():
    # Head 0: positive 0 against an easy negative (gap 3, weight 2) and a wrong one
    # (gap -1, weight 1): each pair's loss times (2 sigmoid(-gap))^gamma, divided by the
    # tier weights' sum.
    scores = torch.tensor([[1.0], [-2.0], [2.0]])
    positive = torch.tensor([[True], [False], [False]])
    negative_weight = torch.tensor([[0.0], [2.0], [1.0]])

    def focus(gap: float, gamma: float) -> float:
        return (2 / (1 + math.exp(gap))) ** gamma

    for gamma in (1.0, 2.0):
        out = multihead_bradley_terry(scores, positive, negative_weight, hard_gamma=gamma)
        expected = (
            2.0 * focus(3.0, gamma) * softplus_neg(3.0) + focus(-1.0, gamma) * softplus_neg(-1.0)
        ) / 3.0
        assert out.bradley_terry[0].item() == pytest.approx(expected, rel=1e-5)
    plain = multihead_bradley_terry(scores, positive, negative_weight)
    assert plain.bradley_terry[0].item() == pytest.approx(
        (2.0 * softplus_neg(3.0) + softplus_neg(-1.0)) / 3.0, rel=1e-5
    )
    # The easy negative's pull shrinks against the wrong one's.
    ratios = []
    for gamma in (0.0, 1.0):
        leaf = scores.clone().requires_grad_(True)
        out = multihead_bradley_terry(leaf, positive, negative_weight, hard_gamma=gamma)
        out.bradley_terry[0].backward()
        assert leaf.grad is not None
        ratios.append(leaf.grad[1, 0].item() / leaf.grad[2, 0].item())
    assert ratios[1] < ratios[0]
