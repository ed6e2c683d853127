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


def test_test_above_train_is_a_regime_note_not_leakage():
    from termwise.probes.target import summarize_target
    from termwise.probes.verdict import decide

    target = summarize_target(np.array([0, 1] * 50), "binary")
    verdict = decide(target, [], [_probe(0.60, 0.80)], False)
    assert verdict.label == "signal"
    assert any("regime difference" in line for line in verdict.evidence)
    assert decide(target, [], [_probe(0.78, 0.80)], False).label == "signal"
    assert decide(target, [], [_probe(0.60, 0.545)], False).label == "weak-signal"
    assert decide(target, [], [_probe(0.60, 0.50)], False).label == "no-signal"


def test_a_model_that_did_not_fit_is_not_evidence():
    from termwise.probes.target import summarize_target
    from termwise.probes.verdict import decide

    target = summarize_target(np.array([0, 1] * 50), "binary")
    verdict = decide(target, [], [_probe(0.499, 0.70)], False)
    assert verdict.label == "no-signal"
    assert any("did not fit" in line for line in verdict.evidence)


@pytest.mark.parametrize("binary", [False, True])
def test_the_mlp_fits_a_small_table(binary):
    from sklearn.datasets import load_diabetes

    from termwise.data.splits import random_split
    from termwise.probes.models import probe_models

    x, y = load_diabetes(return_X_y=True)
    kind = "binary" if binary else "regression"
    target = (y > np.median(y)).astype(int) if binary else y
    train, test = random_split(len(y), 0.25, 0, target if binary else None)
    probes, _ = probe_models(x, target, kind, train, test, seed=0, time_ordered=False)
    mlp = next(p for p in probes if p.model == "mlp")
    metric = "auc" if binary else "r2"
    assert mlp.train[metric].value > (0.7 if binary else 0.3)  # 442 rows: it fit


def test_block_bootstrap_widens_intervals_on_autocorrelated_rows():
    from termwise.probes import weighted_metrics as wm

    rng = np.random.default_rng(0)
    runs = np.repeat(rng.integers(0, 2, 50), 20)  # labels in runs of 20: autocorrelated
    score = runs + np.repeat(rng.normal(0, 1.5, 50), 20)  # errors shared within a run
    classes = np.array([0, 1])
    proba = np.c_[1 - score, score]

    def width(block):
        values = wm.auc(wm.bootstrap_weights(len(runs), 300, 1, block), runs, proba, classes)
        low, high = np.quantile(values, [0.025, 0.975])
        return high - low

    assert width(20) > 1.3 * width(1)
    counts = wm.bootstrap_weights(100, 5, 0, block=7)
    assert counts.shape == (5, 100) and (counts.sum(1) == 100).all()
