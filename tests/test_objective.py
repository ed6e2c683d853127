import pytest
import torch

from termwise import Objective
from termwise.schedules import AutoScale, linear_warmup
from termwise.terms import TermOutput, free_bits_kl


def test_total_breakdown_and_shares():
    objective = Objective({"data": "data", "teacher": "aux"}, weights={"teacher": 0.5})
    data = torch.tensor([1.0, 3.0], requires_grad=True)
    teacher = torch.tensor([0.1], requires_grad=True)
    total, breakdown = objective(0, data=data, teacher=teacher)
    assert total.item() == pytest.approx(2.0 + 0.05)
    total.backward()
    assert data.grad.tolist() == [0.5, 0.5] and teacher.grad.tolist() == [0.5]
    teacher_report = breakdown.term("teacher")
    assert teacher_report.raw.item() == pytest.approx(0.1)
    assert teacher_report.weighted.item() == pytest.approx(0.05)
    assert teacher_report.share.item() == pytest.approx(0.05 / 2.05)
    assert breakdown.share.sum().item() == pytest.approx(1.0)
    assert not breakdown.total.requires_grad


def test_scheduled_weight_and_stats_flow_into_breakdown():
    objective = Objective({"recon": "data", "kl": "kl"}, weights={"kl": linear_warmup(0, 1, 10)})
    mu, logvar = torch.full((4, 2), 0.5), torch.zeros(4, 2)
    kl = free_bits_kl(mu, logvar, free_bits=0.0)
    _, breakdown = objective(5, recon=torch.tensor(1.0), kl=kl)
    flat = breakdown.to_dict()
    assert flat["kl.weight"] == pytest.approx(0.5)
    assert flat["kl.kl_raw"] == pytest.approx(0.125)
    assert flat["kl.weighted"] == pytest.approx(0.0625)
    assert flat["total"] == pytest.approx(1.0625)
    assert set(breakdown.term("kl").stats) >= {"kl_raw", "kl_after", "free_fraction"}


def test_inactive_term_contributes_nothing():
    objective = Objective({"head_a": "data", "head_b": "data"})
    total, breakdown = objective(0, head_a=torch.tensor(2.0), head_b=None)
    assert total.item() == 2.0
    assert breakdown.active.tolist() == [1.0, 0.0]


def test_autoscale_weight_in_objective():
    objective = Objective(
        {"mse": "data", "dir": "aux"},
        weights={"dir": AutoScale(0.25, lo=0.01, hi=100.0, reference="mse")},
    )
    total, breakdown = objective(0, mse=torch.tensor(2.0), dir=TermOutput(torch.tensor([0.1]), {}))
    assert breakdown.term("dir").weight.item() == pytest.approx(5.0)
    assert breakdown.term("dir").share.item() == pytest.approx(0.5 / 2.5)
    assert breakdown.term("dir").at_bound.item() == 0.0
    assert "dir.at_bound" in breakdown.to_dict()
    assert total.item() == pytest.approx(2.5)


def test_validation_messages():
    with pytest.raises(ValueError, match="did you mean 'data'"):
        Objective({"x": "dta"})
    with pytest.raises(ValueError, match="did you mean 'recon'"):
        Objective({"recon": "data"}, weights={"recn": 1.0})
    with pytest.raises(ValueError, match="reference"):
        Objective({"a": "data", "b": "aux"}, weights={"b": AutoScale(0.1, 0.0, 1.0)})
    objective = Objective({"recon": "data", "kl": "kl"})
    with pytest.raises(ValueError, match="missing terms"):
        objective(0, recon=torch.tensor(1.0))
    with pytest.raises(KeyError, match="did you mean"):
        objective(0, recon=torch.tensor(1.0), kl=torch.tensor(1.0))[1].term("kll")
