"""Property tests: identities that must hold for any input, not just hand-picked ones."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from termwise import Objective
from termwise.terms import bradley_terry, free_bits_kl

scores = st.floats(-50, 50, allow_nan=False)


@given(scores, scores)
def test_bradley_terry_logistic_identity(a, b):
    # -log s(x) + log s(-x) = -x, so BT(a, b) - BT(b, a) = b - a.
    forward = bradley_terry(
        torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64)
    ).values.item()
    backward = bradley_terry(
        torch.tensor([b], dtype=torch.float64), torch.tensor([a], dtype=torch.float64)
    ).values.item()
    assert math.isclose(forward - backward, b - a, abs_tol=1e-9)
    assert forward >= 0


@settings(max_examples=50, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.floats(0.0, 2.0),
    st.sampled_from(["mean_dims", "per_dim", "sum_dims"]),
)
def test_free_bits_bounds(seed, free_bits, reduce):
    gen = torch.Generator().manual_seed(seed)
    mu, logvar = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    out = free_bits_kl(mu, logvar, free_bits, reduce=reduce)
    assert (out.values >= 0).all()
    assert out.stats["kl_after"].item() <= out.stats["kl_raw"].item() + 1e-6
    assert -1e-6 <= out.stats["penalty_reduction"].item() <= 1 + 1e-6
    assert 0.0 <= out.stats["free_fraction"].item() <= 1.0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0.01, 100.0), min_size=3, max_size=3),
    st.lists(st.floats(0.0, 10.0), min_size=3, max_size=3),
)
def test_objective_total_and_shares(values, weights):
    names = ["a", "b", "c"]
    objective = Objective(
        dict.fromkeys(names, "data"), weights=dict(zip(names, weights, strict=True))
    )
    total, breakdown = objective(
        0, **{n: torch.tensor(v) for n, v in zip(names, values, strict=True)}
    )
    expected = sum(w * v for w, v in zip(weights, values, strict=True))
    assert math.isclose(total.item(), expected, rel_tol=1e-4, abs_tol=1e-4)
    if expected > 1e-3:
        assert math.isclose(breakdown.share.sum().item(), 1.0, rel_tol=1e-4)
