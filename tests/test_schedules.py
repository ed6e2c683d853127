import pytest
import torch

from termwise.schedules import AutoScale, constant, cyclical, join, linear_warmup, piecewise


def test_constant_and_linear_warmup():
    assert constant(0.3)(10_000) == 0.3
    warm = linear_warmup(0.0, 0.05, 500)
    assert [warm(s) for s in (0, 250, 500, 1000)] == pytest.approx([0.0, 0.025, 0.05, 0.05])
    assert linear_warmup(1.0, 2.0, 0)(0) == 2.0
    with pytest.raises(ValueError):
        linear_warmup(0, 1, -1)


def test_piecewise_epoch_ramp():
    ramp = piecewise([2, 5], [0.02, 0.04, 0.05])
    assert [ramp(e) for e in range(7)] == [0.02, 0.02, 0.04, 0.04, 0.04, 0.05, 0.05]
    with pytest.raises(ValueError, match="len"):
        piecewise([2, 5], [0.1, 0.2])
    with pytest.raises(ValueError, match="increase"):
        piecewise([5, 2], [0.1, 0.2, 0.3])


def test_cyclical_rises_then_holds_each_cycle():
    sched = cyclical(total_steps=100, n_cycle=4, ratio=0.5)
    assert sched(0) == 0.0
    assert sched(6) == pytest.approx(6 / 12.5)  # rise lasts 100 / 4 * 0.5 = 12.5 steps
    assert sched(12) == pytest.approx(12 / 12.5)
    assert sched(13) == 1.0 and sched(24) == 1.0
    assert sched(25) == 0.0  # second cycle starts again
    assert sched(100) == 1.0 and sched(1000) == 1.0
    with pytest.raises(ValueError):
        cyclical(100, ratio=0.0)


def test_join_restarts_step_count():
    sched = join(
        [linear_warmup(0.0, 1.0, 10), constant(1.0), linear_warmup(1.0, 0.0, 10)], [10, 20]
    )
    assert [sched(s) for s in (0, 5, 10, 19, 20, 25, 30)] == pytest.approx(
        [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0]
    )
    with pytest.raises(ValueError):
        join([constant(1.0)], [3])


def test_autoscale_value_clamp_and_no_gradient():
    scale = AutoScale(target_fraction=0.3, lo=0.01, hi=10.0, reference="mse")
    term = torch.tensor(0.5, requires_grad=True)
    lam, pinned = scale(term, torch.tensor(2.0))
    assert lam.item() == pytest.approx(2.0 * 0.3 / 0.5) and pinned.item() == 0.0
    assert not lam.requires_grad
    lam, pinned = scale(torch.tensor(1e-9), torch.tensor(2.0))
    assert lam.item() == 10.0 and pinned.item() == 1.0
    lam, pinned = scale(torch.tensor(1e6), torch.tensor(2.0))
    assert lam.item() == pytest.approx(0.01) and pinned.item() == -1.0  # the lo clamp
    assert scale.unclamped(torch.tensor(1e6), torch.tensor(2.0)).item() == pytest.approx(6e-7)
    with pytest.raises(ValueError):
        AutoScale(0.3, lo=1.0, hi=0.5)
