"""Verdicts on generated data with known answers, and on scikit-learn's bundled sets."""

import numpy as np
import pytest

from termwise.probes.run import ProbeSettings, probe_arrays

FAST = ProbeSettings(permutations=100)


def names(count):
    return [f"f{i}" for i in range(count)]


def test_planted_linear_signal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 5))
    y = (x @ np.array([1.0, -0.5, 0, 0, 0]) + rng.normal(size=1000) > 0).astype(int)
    report = probe_arrays(names(5), x, y, "planted", FAST)
    assert report.verdict.label == "signal"
    significant = {f.name for f in report.features if f.q["pearson"] <= 0.01}
    assert {"f0", "f1"} <= significant and "f4" not in significant


def test_independent_label_is_no_signal():
    rng = np.random.default_rng(1)
    report = probe_arrays(
        names(5), rng.normal(size=(1000, 5)), rng.integers(0, 2, 1000), "independent", FAST
    )
    assert report.verdict.label == "no-signal"
    assert report.verdict.suggestions


@pytest.mark.slow
def test_false_signal_rate_over_20_seeds():
    false_signals = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        report = probe_arrays(
            names(5),
            rng.normal(size=(600, 5)),
            rng.integers(0, 2, 600),
            "independent",
            ProbeSettings(permutations=100, seed=seed),
        )
        false_signals += report.verdict.label == "signal"
    assert false_signals <= 1


def test_leaked_feature():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(800, 4))
    y = (x[:, 0] + rng.normal(size=800) > 0).astype(int)
    x[:, 3] = y + 0.01 * rng.normal(size=800)  # the label itself, barely disguised
    report = probe_arrays(names(4), x, y, "leaky", FAST)
    assert report.verdict.label == "leakage-suspected"
    assert any("f3" in line for line in report.verdict.evidence)


def test_regression_target_with_signal_and_time_order():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(800, 3))
    y = 0.5 * x[:, 1] + rng.normal(size=800)
    report = probe_arrays(names(3), x, y, "value", FAST, times=np.arange(800.0))
    assert report.target.kind == "regression" and report.verdict.label == "signal"
    assert "chronological" in report.split


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["load_breast_cancer", "load_wine"])
def test_sklearn_sets_signal_and_shuffled_no_signal(loader):
    import sklearn.datasets

    data = getattr(sklearn.datasets, loader)()
    columns = [str(c) for c in data.feature_names]
    report = probe_arrays(columns, data.data, data.target, loader, FAST)
    assert report.verdict.label == "signal"
    shuffled = np.random.default_rng(0).permutation(data.target)
    control = probe_arrays(columns, data.data, shuffled, loader, FAST)
    assert control.verdict.label == "no-signal"


def _probe(train, test, control=0.5):
    from termwise.probes.models import Interval, ModelProbe

    def metric(value):
        return {"auc": Interval(value, value - 0.02, value + 0.02)}

    return ModelProbe(
        "linear",
        train=metric(train),
        test=metric(test),
        control_train=metric(control),
        control_test=metric(control),
    )


def test_test_far_above_train_is_suspected_leakage_but_small_gaps_are_not():
    from termwise.probes.target import summarize_target
    from termwise.probes.verdict import decide

    target = summarize_target(np.array([0, 1] * 50), "binary")
    assert decide(target, [], [_probe(0.60, 0.80)], False).label == "leakage-suspected"
    assert decide(target, [], [_probe(0.78, 0.80)], False).label == "signal"
    assert decide(target, [], [_probe(0.60, 0.545)], False).label == "weak-signal"
    assert decide(target, [], [_probe(0.60, 0.50)], False).label == "no-signal"
