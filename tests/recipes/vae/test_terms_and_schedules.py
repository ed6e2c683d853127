"""The VAE's objective against a hand computation, the curriculum, and auto free bits."""

import math

import pytest
import torch
from rich.console import Console

from termwise.config import load_yaml_config
from termwise.recipes.vae.config import VaeConfig
from termwise.recipes.vae.curriculum import plan_curriculum
from termwise.recipes.vae.data import load_data
from termwise.recipes.vae.model import decoder_targets
from termwise.recipes.vae.recipe import build_model, make_loss, make_objective
from termwise.schedules import AutoFreeBits
from termwise.terms import free_bits_kl

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


@pytest.mark.parametrize("reduce", ["mean_dims", "per_dim", "sum_dims"])
def test_loss_matches_a_hand_computation(tmp_path, tiny_bert, reduce):
    from tests.recipes.vae.conftest import tiny_config

    path = tiny_config(tmp_path, tiny_bert, kl={"free_bits": 0.05, "reduce": reduce})
    config = load_yaml_config(path, VaeConfig)
    data = load_data(config, QUIET)
    torch.manual_seed(0)
    model = build_model(config, data)
    curriculum = plan_curriculum(config.stages, steps_per_epoch=10)
    objective = make_objective(config, curriculum)
    loss_fn = make_loss(config, objective, None)
    rows = torch.arange(8)
    batch = (data.ids[rows], data.lengths[rows], data.labels[rows], data.teacher[rows])
    step = 5  # half-way through the 0 -> 1 anneal of 10 steps
    torch.manual_seed(1)
    out = loss_fn(model, batch, step)
    torch.manual_seed(1)
    forward = model(batch[0], batch[1])
    # By hand: per-sentence summed token NLL; KL per dim with free bits, in nats per sentence.
    _, targets = decoder_targets(batch[0], batch[1])
    log_p = torch.log_softmax(forward.logits, -1).gather(-1, targets[..., None]).squeeze(-1)
    answer = -(log_p * (targets != 0)).sum(-1)
    per_dim = 0.5 * (forward.mu**2 + forward.logvar.exp() - 1 - forward.logvar)
    if reduce == "per_dim":
        kl = (per_dim - 0.05).clamp_min(0).sum((-1, -2))
    elif reduce == "mean_dims":
        kl = (per_dim.mean(-1) - 0.05).clamp_min(0).sum(-1) * per_dim.shape[-1]
    else:
        kl = (per_dim.sum(-1) - 0.05).clamp_min(0).sum(-1)
    cosine = torch.nn.functional.cosine_similarity(forward.teacher, batch[3], dim=-1)
    expected = answer.mean() + 0.5 * kl.mean() + 10.0 * (1 - cosine).mean()
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-5)
    assert out.breakdown.term("kl").weight.item() == pytest.approx(0.5)


def test_curriculum_joins_ramps_and_teacher_weights():
    from termwise.recipes.vae.config import StageConfig

    stages = [
        StageConfig(name="a", epochs=2, kl_weight={"start": 0.0, "end": 1.0}, teacher_weight=1.0),
        StageConfig(
            name="b",
            epochs=1,
            kl_weight={"start": 0.0, "end": 1.0, "shape": "cyclical", "cycles": 2},
            teacher_weight=3.0,
        ),
    ]
    plan = plan_curriculum(stages, steps_per_epoch=10)
    assert plan.total == 30 and plan.starts == [0, 20]
    assert [plan.kl_weight(s) for s in (0, 10, 19)] == pytest.approx([0.0, 0.5, 0.95])
    # cycle of 5 steps, rising over the first half (2.5 steps): 0, 0.4, 0.8, then held at 1
    assert [plan.kl_weight(s) for s in (20, 21, 22, 23, 25)] == pytest.approx(
        [0.0, 0.4, 0.8, 1.0, 0.0]
    )
    assert [plan.teacher_weight(s) for s in (0, 19, 20, 29)] == [1.0, 1.0, 3.0, 3.0]
    assert [plan.stage_at(s) for s in (0, 19, 20, 29)] == [0, 0, 1, 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_free_bits_lands_in_the_healthy_band(seed):
    generator = torch.Generator().manual_seed(seed)
    auto = AutoFreeBits(target=0.3, every=10)
    scale = 0.05
    for step in range(1, 101):
        kl = (torch.randn(256, generator=generator) * 0.8).exp() * scale  # lognormal per token
        threshold = auto.observe(step, kl)
    fresh = (torch.randn(4096, generator=generator) * 0.8).exp() * scale
    # Put the fresh KL through free_bits_kl with mu, logvar that give exactly that KL per dim.
    mu = (2 * fresh).sqrt()[:, None]
    stats = free_bits_kl(mu, torch.zeros_like(mu), threshold, "mean_dims").stats
    assert 0.2 < stats["penalty_reduction"].item() < 0.4  # free_bits.band's healthy band
    assert auto.state_dict()["value"] == threshold
    assert len(auto.state_dict()["recent"]) == 10  # the window the next estimate uses


def test_auto_free_bits_follows_a_falling_kl_within_a_quarter_window():
    """An annealed KL weight pushes the KL down after the first estimate: the threshold
    follows within every // 4 steps instead of a whole window."""
    auto = AutoFreeBits(target=0.3, every=20)
    for step in range(1, 21):
        auto.observe(step, torch.full((64,), 1.0))  # KL 1 while the weight is low
    high = auto.value
    for step in range(21, 31):
        auto.observe(step, torch.full((64,), 0.1))  # the weight rose: KL 10x lower
    assert high == pytest.approx(0.3, rel=1e-3)
    # Solved at step 30 on steps 11-30 (ten at 1.0, ten at 0.1, mean 0.55): the threshold
    # fb with (0.5 * 0.1 + 0.5 * fb) / 0.55 = 0.3 is 0.23, already on its way down.
    assert auto.value == pytest.approx(0.23, rel=1e-2)
    once_a_window = AutoFreeBits(target=0.3, every=20, refresh=20)
    for step in range(1, 31):
        once_a_window.observe(step, torch.full((64,), 1.0 if step <= 20 else 0.1))
    assert once_a_window.value == pytest.approx(high, rel=1e-3)


def test_auto_free_bits_respects_its_bounds():
    auto = AutoFreeBits(target=0.3, every=1, lo=0.0, hi=0.01)
    assert auto.observe(1, torch.full((10,), 5.0)) == 0.01
    assert auto.solve(torch.zeros(10)) == 0.0
    assert math.isfinite(auto.solve(torch.tensor([0.0, 1.0])))
