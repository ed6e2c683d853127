import math

from termwise.health import (
    FitAtBaseline,
    FitTestAboveTrain,
    FitValRising,
    LogitsSaturated,
    MetricReport,
    NonFinite,
    PosteriorCollapsed,
)
from tests.health.helpers import window


def test_logits_saturated():
    (finding,) = LogitsSaturated().check_window(window({"logits.saturation": 0.5}), [])
    assert finding.subject == "logits.saturation"
    assert LogitsSaturated().check_window(window({"logits.saturation": 0.05}), []) == []


def test_nonfinite_on_values_and_skipped_steps():
    (finding,) = NonFinite().check_window(window({"total": math.nan, "kl.raw": 1.0}), [])
    assert finding.severity == "error" and "total" in finding.message
    (skipped,) = NonFinite().check_window(window({"total": 1.0}, nonfinite=2), [])
    assert skipped.evidence["nonfinite_steps"] == 2
    assert NonFinite().check_window(window({"total": 1.0, "grad_norm": 3.0}), []) == []


def test_test_above_train():
    rule = FitTestAboveTrain()
    (finding,) = rule.check_metrics([MetricReport(10, {"train_loss": 0.5, "test_loss": 0.9})])
    assert finding.subject == "test_loss"
    assert rule.check_metrics([MetricReport(10, {"train_loss": 0.5, "val_loss": 0.7})]) == []
    assert rule.check_metrics([MetricReport(10, {"val_loss": 0.52})]) == []


def test_at_baseline_fires_when_held_out_loss_is_the_class_priors():
    rule = FitAtBaseline()
    prior = -2 * 0.5 * math.log(0.5)  # two balanced classes: ln 2
    (finding,) = rule.check_metrics(
        [MetricReport(400, {"test_loss": 0.6935, "baseline_loss": prior})]
    )
    assert finding.subject == "test_loss" and "termwise probe" in finding.suggestion
    learned = MetricReport(400, {"test_loss": 0.39, "baseline_loss": prior})
    assert rule.check_metrics([learned]) == []
    assert rule.check_metrics([MetricReport(400, {"test_loss": 0.9})]) == []  # no baseline


def test_val_rising():
    rule = FitValRising(patience=3)
    val = [1.0, 0.8, 0.85, 0.9, 0.95]
    train = [1.0, 0.7, 0.6, 0.5, 0.4]
    reports = [
        MetricReport(i * 100, {"val_loss": v, "train_loss": t})
        for i, (v, t) in enumerate(zip(val, train, strict=True))
    ]
    (finding,) = rule.check_metrics(reports)
    assert finding.evidence["best_step"] == 100
    assert rule.check_metrics(reports[:-1]) == []  # only two rises so far
    flat = [MetricReport(i, {"val_loss": 1.0 - 0.1 * i, "train_loss": 1.0}) for i in range(5)]
    assert rule.check_metrics(flat) == []


def test_posterior_collapsed_fires_below_threshold_and_names_the_start():
    rule = PosteriorCollapsed(threshold=0.02)
    terms, roles = ("preference", "bayes_kl"), ("data", "kl")
    first = window({"bayes_kl.std_to_mu": 0.1}, terms, roles, step=49)
    late = window({"bayes_kl.std_to_mu": 0.005}, terms, roles, index=5, step=299)
    assert rule.check_window(first, []) == []
    (finding,) = rule.check_window(late, [first])
    assert finding.code == "bayes.deterministic" and finding.subject == "bayes_kl"
    assert "0.5 %" in finding.message and "was 10.0 %" in finding.message
    assert rule.check_window(window({"recon.raw": 1.0}), []) == []  # no such stat: quiet
