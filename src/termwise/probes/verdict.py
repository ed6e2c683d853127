"""The verdict: no-signal, weak-signal, signal or leakage-suspected, with its evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from termwise.probes.features import STATS, FeatureResult
from termwise.probes.models import PRIMARY, ModelProbe
from termwise.probes.target import TargetSummary

Label = Literal["no-signal", "weak-signal", "signal", "leakage-suspected"]
ALPHA = 0.05
# A signal must be worth acting on, not merely detectable: held-out AUC 0.55 or R^2 0.01.
MIN_EFFECT = {"auc": 0.55, "r2": 0.01}
CHANCE = {"auc": 0.5, "r2": 0.0}
# A model whose training metric is within this of chance learned nothing from its own data:
# its held-out numbers are not evidence either way.
FIT_MARGIN = {"auc": 0.02, "r2": 0.005}


@dataclass
class Verdict:
    label: Label
    evidence: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)


def fitted(probe: ModelProbe, metric: str) -> bool:
    """Whether the model fit its training data at all (training metric above chance)."""
    return probe.train[metric].value > CHANCE[metric] + FIT_MARGIN[metric]


def beats_control(probe: ModelProbe, metric: str) -> bool:
    """The real-label test interval lies entirely above the shuffled-label one, and above
    chance: with autocorrelated series a control can land away from chance either way."""
    real, control = probe.test[metric], probe.control_test[metric]
    return bool(real.low > max(control.high, CHANCE[metric]))


def _leaking_features(target: TargetSummary, features: list[FeatureResult]) -> list[str]:
    found = []
    for result in features:
        gain = result.values.get("one_feature", 0.0)
        if target.kind == "regression":
            near_perfect = gain >= 0.95 or result.values.get("pearson", 0.0) >= 0.98
        else:
            near_perfect = (
                target.entropy is not None and target.entropy > 0 and (gain >= 0.9 * target.entropy)
            )
        if near_perfect:
            found.append(result.name)
    return found


def decide(
    target: TargetSummary,
    features: list[FeatureResult],
    models: list[ModelProbe],
    time_ordered: bool,
) -> Verdict:
    metric = PRIMARY[target.kind]
    # Each statistic is BH-corrected across features; Bonferroni over the statistics on
    # top keeps the chance of any false "significant feature" under 5 % in all.
    strict = ALPHA / len(STATS)
    significant = {f.name: [s for s in f.significant(strict)] for f in features}
    significant = {k: v for k, v in significant.items() if v}
    usable = [m for m in models if fitted(m, metric)]
    winners = [m for m in usable if beats_control(m, metric)]
    best = max(usable or models, key=lambda m: m.test[metric].value)
    evidence = [
        f"{m.model}: test {metric} {m.test[metric].value:.3f} "
        f"[{m.test[metric].low:.3f}, {m.test[metric].high:.3f}] vs shuffled-label control "
        f"{m.control_test[metric].value:.3f} [{m.control_test[metric].low:.3f}, "
        f"{m.control_test[metric].high:.3f}]; train {m.train[metric].value:.3f}"
        + ("" if fitted(m, metric) else "; did not fit its training data: not evidence")
        for m in models
    ]
    evidence.append(
        f"{len(significant)} of {len(features)} features significant (BH q <= {strict:.4f})"
        + (
            ": " + ", ".join(f"{k} ({'/'.join(v)})" for k, v in list(significant.items())[:8])
            if significant
            else ""
        )
    )
    leaks = _leaking_features(target, features)
    # Test well above train (the whole test interval above the whole train interval) is
    # reported, but is no evidence of leakage by itself: a calmer test period (a regime
    # change) does the same. Leakage needs evidence that points at it.
    for m in winners:
        if m.test[metric].low > m.train[metric].high + 0.02:
            evidence.append(
                f"{m.model}: test {metric} above train: the test period differs from the "
                "training one (a regime difference), or test rows resemble training rows"
            )
    if leaks:
        evidence.append(f"near-perfect single features: {', '.join(leaks)}")
        return Verdict(
            "leakage-suspected",
            evidence,
            [
                "check how the suspicious columns are computed: do they use the target or "
                "anything measured after it?",
                "split by time or by group (--time-col, --group-col) if rows are related",
            ],
        )
    effect = best.test[metric].value - CHANCE[metric]
    strong = [m for m in winners if m.test[metric].value >= MIN_EFFECT[metric]]
    if strong:
        return Verdict("signal", evidence, [])
    if winners or significant:
        return Verdict(
            "weak-signal",
            evidence,
            [
                f"the best held-out {metric} is {best.test[metric].value:.3f} ({effect:+.3f} over "
                "chance): real but small; more data or better features before a bigger model",
            ],
        )
    return Verdict("no-signal", evidence, _no_signal_suggestions(target, time_ordered))


def _no_signal_suggestions(target: TargetSummary, time_ordered: bool) -> list[str]:
    suggestions = [
        "no model beat its shuffled-label control and no feature passed the corrected "
        "tests: tuning the model (or its KL weight) will not create signal that is not there",
        "try other targets built from the same data (termwise probe --ohlcv ranks several)",
        "add features that carry more context: lags, rolling statistics, interactions, "
        "domain-specific measures",
    ]
    if time_ordered:
        suggestions.insert(1, "try a longer horizon: short-horizon targets are often noise")
    if target.kind != "regression":
        suggestions.insert(
            1,
            "if the label was thresholded from a number, probe the number "
            "as a regression target: thresholding throws information away",
        )
    return suggestions
