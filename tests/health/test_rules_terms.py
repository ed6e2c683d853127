import pytest

from termwise.health import (
    AutoScalePinned,
    FreeBitsAllFree,
    FreeBitsBand,
    KLBlocksLearning,
    TermDominant,
    TermNegligible,
)
from tests.health.helpers import share_means, window


def free_bits_window(kl_raw, kl_after, free_bits, free_fraction, **kw):
    reduction = (kl_raw - kl_after) / kl_raw if kl_raw else 0.0
    return window(
        {
            "kl.kl_raw": kl_raw,
            "kl.kl_after": kl_after,
            "kl.free_bits": free_bits,
            "kl.free_fraction": free_fraction,
            "kl.penalty_reduction": reduction,
        },
        **kw,
    )


def test_all_free_fires_with_suggestion():
    (finding,) = FreeBitsAllFree().check_window(free_bits_window(0.05, 0.0, 0.1, 1.0), [])
    assert finding.code == "free_bits.all_free" and finding.subject == "kl"
    assert finding.evidence["suggested_free_bits"] == pytest.approx(0.015)
    assert "0.015" in finding.suggestion and "100.0 %" in finding.message


def test_all_free_quiet_when_penalty_active():
    assert FreeBitsAllFree().check_window(free_bits_window(0.05, 0.03, 0.02, 0.0), []) == []
    assert FreeBitsAllFree().check_window(free_bits_window(0.0, 0.0, 0.1, 1.0), []) == []


@pytest.mark.parametrize(
    ("kl_raw", "free_bits", "severity", "word"),
    [
        (0.05, 0.002, "warning", "too tight"),
        (0.05, 0.04, "warning", "too generous"),
        (0.05, 0.015, "info", "healthy"),
        (0.05, 0.0075, "info", "borderline"),
    ],
)
def test_band_classifies_penalty_reduction(kl_raw, free_bits, severity, word):
    w = free_bits_window(kl_raw, kl_raw - free_bits, free_bits, 0.0)
    (finding,) = FreeBitsBand().check_window(w, [])
    assert finding.severity == severity and word in finding.message
    if word == "healthy":  # nothing to change: no value for `health fix` to apply
        assert "suggested_free_bits" not in finding.evidence
    else:
        assert finding.evidence["suggested_free_bits"] == pytest.approx(0.015)


def test_band_skips_all_free_case():
    assert FreeBitsBand().check_window(free_bits_window(0.05, 0.0, 0.1, 1.0), []) == []


def test_band_calibration_recentres_on_first_windows():
    rule = FreeBitsBand(calibrate_after=3)
    for _ in range(2):  # 50 % reduction: "borderline" under the default band
        (f,) = rule.check_window(free_bits_window(0.04, 0.02, 0.02, 0.0), [])
        assert "borderline" in f.message
    calibration, judged = rule.check_window(free_bits_window(0.04, 0.02, 0.02, 0.0), [])
    assert "calibrated" in calibration.message
    assert rule.band.healthy == pytest.approx((0.4, 0.6))
    assert "healthy" in judged.message
    restored = FreeBitsBand(calibrate_after=3)
    restored.load_state_dict(rule.state_dict())
    assert restored.calibrated and restored.band.healthy == pytest.approx((0.4, 0.6))


def test_negligible_fires_with_weight_suggestion_and_quiet_otherwise():
    means = share_means(recon=(1.0, 1.0, 0.98), teacher=(0.2, 0.1, 0.02))
    w = window(means, terms=("recon", "teacher"), roles=("data", "aux"))
    (finding,) = TermNegligible().check_window(w, [w])
    assert finding.subject == "teacher"
    # share 2 % at weight 0.1 -> weight for 10 %: 0.1 * 0.1 * 0.98 / (0.9 * 0.02)
    assert finding.evidence["suggested_weight"] == pytest.approx(0.1 * 0.1 * 0.98 / 0.018, rel=1e-5)
    healthy = share_means(recon=(1.0, 1.0, 0.8), teacher=(2.0, 0.1, 0.2))
    assert (
        TermNegligible().check_window(
            window(healthy, terms=("recon", "teacher"), roles=("data", "aux")), []
        )
        == []
    )


def test_negligible_skips_ramping_weight_and_kl_terms():
    roles = {"terms": ("recon", "kl"), "roles": ("data", "aux")}
    before = window(share_means(recon=(1.0, 1.0, 0.99), kl=(1.0, 0.005, 0.005)), **roles)
    now = window(share_means(recon=(1.0, 1.0, 0.99), kl=(1.0, 0.01, 0.01)), index=1, **roles)
    assert TermNegligible().check_window(now, [before]) == []
    assert len(TermNegligible().check_window(now, [now])) == 1
    assert TermNegligible().check_window(now, []) == []  # first window: may be mid-ramp
    as_kl = window(share_means(recon=(1.0, 1.0, 0.99), kl=(1.0, 0.01, 0.01)), index=1)
    assert TermNegligible().check_window(as_kl, [as_kl]) == []  # a small KL share is normal


def test_dominant_fires_on_a_regulariser_not_on_data_or_an_elbo_kl():
    means = share_means(recon=(0.1, 1.0, 0.1), reg=(0.9, 1.0, 0.9))
    roles = {"terms": ("recon", "reg"), "roles": ("data", "regularizer")}
    (finding,) = TermDominant().check_window(window(means, **roles), [window(means, **roles)])
    assert finding.subject == "reg" and finding.code == "term.dominant"
    assert finding.evidence["suggested_weight"] == pytest.approx(0.5 * 0.1 / (0.5 * 0.9), rel=1e-5)
    data_heavy = share_means(recon=(0.9, 1.0, 0.1), reg=(0.1, 1.0, 0.1))
    assert TermDominant().check_window(window(data_heavy, **roles), []) == []
    # A KL at 90 %: the ELBO's usual case, left to kl.blocks_learning unless asked for.
    kl = share_means(recon=(0.1, 1.0, 0.1), kl=(0.9, 1.0, 0.9))
    assert TermDominant().check_window(window(kl), [window(kl)]) == []
    with_kl = TermDominant(roles=("kl", "aux", "regularizer"))
    assert len(with_kl.check_window(window(kl), [window(kl)])) == 1


def _kl_windows(data_losses, kl_share):
    """Windows whose KL (weight 1) is ``kl_share`` of data loss plus KL."""
    return [
        window(
            share_means(
                recon=(loss, 1.0, 1 - kl_share),
                kl=(loss * kl_share / (1 - kl_share), 1.0, kl_share),
            ),
            index=i,
        )
        for i, loss in enumerate(data_losses)
    ]


def test_kl_blocks_learning_fires_when_data_loss_flat_and_kl_all_of_it():
    *history, now = _kl_windows([2.30, 2.30, 2.301, 2.299], kl_share=0.98)
    (finding,) = KLBlocksLearning(patience=3).check_window(now, history)
    assert finding.code == "kl.blocks_learning"
    # The weight that gives the KL a 25 % share: w' = w * (0.25 / 0.75) / (0.98 / 0.02).
    weight = now.get("kl.weight")
    expected = weight * (0.25 / 0.75) / (0.98 / 0.02)
    assert finding.evidence["suggested_weight"] == pytest.approx(expected, rel=1e-2)
    # A plateau under an ELBO-weighted KL of 86-91 % is the model's own, not the KL's.
    *history, now = _kl_windows([2.30, 2.30, 2.301, 2.299], kl_share=0.9)
    assert KLBlocksLearning(patience=3).check_window(now, history) == []


def test_kl_blocks_learning_at_all_of_the_objective_does_not_wait_for_a_noisy_loss():
    """KL weight 50 on a classifier: the KL is 100.0 % of the total and the early 5-step
    windows of the data loss go up and down; the rule fires at the second window, with a
    weight solved on the raw values (the shares have rounded to 1 and 0)."""
    first, second = _kl_windows([0.674, 0.633], kl_share=0.5)
    means = {**second.means, "kl.share": 1.0, "recon.share": 0.0, "kl.raw": 1.0e4}
    now = window(means, index=1)
    (finding,) = KLBlocksLearning().check_window(now, [first])
    # 25 % of KL plus data: w' = (0.25 / 0.75) * 0.633 / 1e4
    assert finding.evidence["suggested_weight"] == pytest.approx(0.633 / 3e4, rel=1e-3)
    assert KLBlocksLearning().check_window(now, []) == []  # the first window: nothing before


def test_kl_blocks_learning_quiet_when_improving_or_kl_small():
    *history, now = _kl_windows([2.3, 2.0, 1.7, 1.4], kl_share=0.9)
    assert KLBlocksLearning(patience=3).check_window(now, history) == []
    *history, now = _kl_windows([2.3, 2.3, 2.3, 2.3], kl_share=0.2)
    assert KLBlocksLearning(patience=3).check_window(now, history) == []


def test_autoscale_pinned():
    means = share_means(mse=(1.0, 1.0, 0.9), dir=(0.1, 10.0, 0.1))
    pinned = window({**means, "dir.at_bound": 0.95}, terms=("mse", "dir"), roles=("data", "aux"))
    (finding,) = AutoScalePinned().check_window(pinned, [])
    assert (
        finding.subject == "dir" and "95.0 %" in finding.message and "hi clamp" in finding.message
    )
    assert finding.evidence["suggested_clamp_high"] == pytest.approx(10 * means["dir.weight"])
    low = window({**means, "dir.at_bound": -0.95}, terms=("mse", "dir"), roles=("data", "aux"))
    (finding,) = AutoScalePinned().check_window(low, [])
    assert finding.evidence["suggested_clamp_low"] == pytest.approx(means["dir.weight"] / 10)
    free = window({**means, "dir.at_bound": 0.5}, terms=("mse", "dir"), roles=("data", "aux"))
    assert AutoScalePinned().check_window(free, []) == []
    # Half the steps at each clamp is not one clamp holding the weight.
    split = window({**means, "dir.at_bound": 0.0}, terms=("mse", "dir"), roles=("data", "aux"))
    assert AutoScalePinned().check_window(split, []) == []


def test_starved_term():
    from termwise.health import TermStarved

    means = share_means(recon=(1.0, 1.0, 0.9), kl=(0.1, 1.0, 0.1))
    means["kl.active"] = 0.1
    (finding,) = TermStarved().check_window(window(means), [])
    assert finding.subject == "kl" and "10.0 %" in finding.message
    means["kl.active"] = 0.9
    assert TermStarved().check_window(window(means), []) == []


@pytest.mark.parametrize(
    ("gap", "fires"), [(0.05, False), (-0.4, False), (1.5, True), (-3.0, True)]
)
def test_negligible_judges_a_regulariser_by_its_target_gap(gap, fires):
    # log-square at 2.5 % of the total: quiet while the positives sit near |r| = 1 (gap ~ 0),
    # a warning when they are far from it (the weight is then too weak to hold them).
    means = share_means(bt=(1.0, 1.0, 0.975), logsq=(0.08, 0.3, 0.025))
    means["logsq.target_gap"] = gap
    w = window(means, terms=("bt", "logsq"), roles=("data", "regularizer"))
    found = TermNegligible().check_window(w, [w])
    assert [f.subject for f in found] == (["logsq"] if fires else [])


def test_multihead_target_gap_is_the_mean_log_r2_of_each_heads_positives():
    import torch

    from termwise.terms.multihead import multihead_bradley_terry

    scores = torch.tensor([[1.0, 2.0], [0.5, -3.0], [4.0, 0.1]])
    positive = torch.tensor([[True, True], [True, False], [False, True]])
    negative = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    gap = multihead_bradley_terry(scores, positive, negative).target_gap
    expected = [
        (0.0 + torch.log(torch.tensor(0.25))) / 2,
        (torch.log(torch.tensor(4.0)) + torch.log(torch.tensor(0.01))) / 2,
    ]
    assert torch.allclose(gap, torch.tensor([float(e) for e in expected]), atol=1e-4)


def _ramp(weight, kl_raw, free_bits, step):
    w = free_bits_window(kl_raw, 0.0, free_bits, 1.0, step=step)
    return window({**w.means, "kl.weight": weight}, step=step)


def test_all_free_during_a_warm_up_waits_for_the_kl_unless_it_is_far_below():
    """A posterior starts at the prior: all free at the start of every free-bits run. While
    the weight ramps the rule fires only for a KL under a quarter of the threshold."""
    rule = FreeBitsAllFree()
    growing = [_ramp(0.1, 0.0105, 0.0225, 9), _ramp(0.2, 0.0123, 0.0225, 19)]
    assert rule.check_window(growing[1], growing[:1]) == []  # KL at 55 % of the threshold
    far = [_ramp(0.1, 0.0105, 0.1, 9), _ramp(0.2, 0.0123, 0.1, 19)]
    (finding,) = rule.check_window(far[1], far[:1])  # KL at 12 % of it: planted, caught early
    assert finding.severity == "warning"
    settled = [_ramp(0.5, 0.02, 0.0225, 109), _ramp(0.5, 0.02, 0.0225, 119)]
    assert len(rule.check_window(settled[1], settled[:1])) == 1  # after the ramp: any gap


def test_band_is_not_judged_while_the_kl_weight_ramps():
    def band_window(weight, step):
        w = free_bits_window(0.05, 0.01, 0.04, 0.0)  # 80 %: "too generous" once settled
        return window({**w.means, "kl.weight": weight}, step=step)

    rule = FreeBitsBand()
    assert rule.check_window(band_window(0.3, 29), [band_window(0.2, 19)]) == []
    (finding,) = rule.check_window(band_window(0.5, 129), [band_window(0.5, 119)])
    assert finding.severity == "warning" and "too generous" in finding.message


def test_dominant_leaves_alone_a_term_on_its_way_out():
    """A teacher distilled in the first steps: 88 % then 81 % of the total, falling fast
    enough to be under 80 % by the next window; a log-square term at 98 % then 97 % is not."""
    roles = {"terms": ("answer", "teacher"), "roles": ("data", "aux")}

    def at(share, step):
        means = share_means(answer=(1.0, 1.0, 1 - share), teacher=(1.0, 10.0, share))
        return window(means, step=step, **roles)

    assert TermDominant().check_window(at(0.806, 7), [at(0.885, 3)]) == []
    (finding,) = TermDominant().check_window(at(0.975, 9), [at(0.984, 4)])
    assert finding.subject == "teacher"


@pytest.mark.parametrize(("offset", "fires"), [(0.0, False), (2.0, True)])
def test_a_small_centring_term_is_negligible_only_when_the_rewards_are_off_centre(offset, fires):
    import torch

    from termwise.health import HealthMonitor
    from termwise.objective import Objective
    from termwise.terms import bradley_terry, reward_centering

    objective = Objective(
        {"preference": "data", "centering": "regularizer"}, weights={"centering": 0.0003}
    )
    monitor = HealthMonitor(rules=[TermNegligible()], every=10)
    generator = torch.Generator().manual_seed(0)
    for step in range(40):
        chosen = torch.randn(16, generator=generator) + 0.5 + offset
        rejected = torch.randn(16, generator=generator) - 0.5 + offset
        terms = {
            "preference": bradley_terry(chosen, rejected),
            "centering": reward_centering(chosen, rejected),
        }
        monitor.observe(step, objective(step, **terms)[1])
    assert bool(monitor.findings) == fires
