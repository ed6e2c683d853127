import math

import pytest
import torch
import torch.nn.functional as F

from termwise.terms import next_vector_info_nce


def test_matches_formula_with_hard_negatives():
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(4, 8, generator=gen), torch.randn(4, 8, generator=gen)
    hard = torch.randn(4, 3, 8, generator=gen)
    out = next_vector_info_nce(pred, target, hard, temperature=0.5)
    p, t, h = (F.normalize(x.double(), dim=-1) for x in (pred, target, hard))
    for i in range(4):
        logits = [float(p[i] @ t[j]) / 0.5 for j in range(4)]
        logits += [float(p[i] @ h[i, k]) / 0.5 for k in range(3)]
        expected = -logits[i] + math.log(sum(math.exp(v) for v in logits))
        assert out.values[i].item() == pytest.approx(expected, rel=1e-4)
    assert out.values.shape == (4,)


def test_stats_count_rows_whose_target_wins():
    target = torch.eye(3)
    pred = torch.stack([target[0], target[1], target[0]])  # row 2 points at row 0's target
    out = next_vector_info_nce(pred, target, temperature=0.1)
    assert out.stats["accuracy"].item() == pytest.approx(2 / 3)
    assert out.stats["pos"].item() == pytest.approx(2 / 3)


def test_copying_the_context_loses_to_pointing_at_the_target():
    target = torch.eye(4)
    context = torch.roll(target, 1, 0)[:, None]  # each row's hard negative: another vector
    copied = next_vector_info_nce(context[:, 0], target, context, temperature=0.1)
    pointed = next_vector_info_nce(target, target, context, temperature=0.1)
    assert (pointed.values < copied.values).all()
    assert pointed.stats["accuracy"].item() == 1.0
    assert copied.stats["accuracy"].item() == 0.0


def test_a_hard_negative_equal_to_the_target_is_left_out():
    target = torch.eye(2)
    repeated = target[:, None]  # the context repeats the target sentence
    out = next_vector_info_nce(target, target, repeated, temperature=0.1)
    alone = next_vector_info_nce(target, target, temperature=0.1)
    assert torch.equal(out.values, alone.values)


def test_gradient_flows_to_a_learned_temperature():
    tau = torch.tensor(0.1, requires_grad=True)
    pred = torch.randn(5, 6, requires_grad=True)
    next_vector_info_nce(pred, torch.randn(5, 6), temperature=tau).values.mean().backward()
    assert pred.grad is not None and tau.grad is not None and tau.grad.item() != 0


def test_bad_shapes_and_temperature_are_errors():
    with pytest.raises(ValueError, match="temperature"):
        next_vector_info_nce(torch.ones(2, 3), torch.ones(2, 3), temperature=0.0)
    with pytest.raises(ValueError, match=r"\[B, d\]"):
        next_vector_info_nce(torch.ones(2, 3), torch.ones(3, 3))
