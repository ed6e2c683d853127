"""Run every probe on one target and decide the verdict."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from termwise.data.ohlcv import FEATURES, OhlcvFrame, target_arrays
from termwise.data.splits import make_split
from termwise.probes.features import FeatureProbeSettings, FeatureResult, probe_features
from termwise.probes.models import ModelProbe, probe_models
from termwise.probes.target import TargetSummary, check_target, infer_kind, summarize_target
from termwise.probes.verdict import Verdict, decide


@dataclass
class ProbeSettings:
    """How thoroughly to probe. Defaults finish 100,000 rows x 30 features in well under
    two minutes on 2 cores."""

    permutations: int = 200
    test_fraction: float = 0.25
    seed: int = 0
    task: str = "auto"
    mi_rows: int = 2000


@dataclass
class ProbeReport:
    target_name: str
    target: TargetSummary
    split: str
    train_rows: int
    test_rows: int
    features: list[FeatureResult]
    models: list[ModelProbe]
    verdict: Verdict
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # What the same pipeline reaches on random walks (OHLCV targets; see construction.py).
    construction: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_arrays(
    names: list[str],
    x: np.ndarray,
    y: np.ndarray,
    target_name: str,
    settings: ProbeSettings | None = None,
    times: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    label_end: np.ndarray | None = None,
    dropped_rows: int = 0,
) -> ProbeReport:
    """Probe features ``x`` (rows x features) against target ``y``."""
    settings = settings or ProbeSettings()
    started = time.perf_counter()
    kind = infer_kind(y, settings.task)
    check_target(y, kind, target_name)
    target = summarize_target(y, kind)
    codes = y.astype(float) if kind == "regression" else np.unique(y, return_inverse=True)[1]
    time_ordered = times is not None
    if time_ordered:
        assert times is not None
        order = np.argsort(times, kind="stable")  # circular-shift nulls need time order
        x, codes, times = x[order], codes[order], times[order]
        groups = None if groups is None else groups[order]
        label_end = None if label_end is None else label_end[order]
    train, test, how = make_split(
        len(codes),
        settings.test_fraction,
        settings.seed,
        times=times,
        groups=groups,
        strata=None if kind == "regression" else codes,
        label_end=label_end,
    )
    feature_settings = FeatureProbeSettings(
        permutations=settings.permutations,
        mi_rows=settings.mi_rows,
        mi_permutations=settings.permutations,
        seed=settings.seed,
        time_ordered=time_ordered,
    )
    features, usage = probe_features(names, x, codes, kind, train, test, feature_settings)
    models, model_usage = probe_models(x, codes, kind, train, test, settings.seed, time_ordered)
    null_kind = (
        "circular shifts of the time-ordered target"
        if time_ordered
        else "random permutations of the target"
    )
    notes = [
        f"nulls: {null_kind}, seeded: {usage['correlation_permutations']} for each "
        f"correlation, {usage['permutations']} for the one-feature model and "
        f"{usage['mi_permutations']} for mutual information (p-values are exact counts, so "
        f"none is below 1 / (shuffles + 1))",
        f"mutual information on {usage['mi_rows']} of {usage['rows']} rows (kNN estimator)",
        f"models trained on {model_usage['train_rows']} rows, scored on "
        f"{model_usage['test_rows']}; intervals from {model_usage['bootstraps']} bootstraps"
        + (
            f" of blocks of {model_usage['block']} consecutive rows (time-ordered rows are "
            "autocorrelated)"
            if model_usage["block"] > 1
            else ""
        ),
    ]
    if dropped_rows:
        notes.append(f"{dropped_rows} rows with missing values dropped (--on-missing drop)")
    verdict = decide(target, features, models, time_ordered)
    return ProbeReport(
        target_name,
        target,
        how,
        len(train),
        len(test),
        features,
        models,
        verdict,
        notes,
        time.perf_counter() - started,
    )


def probe_bars(bars: OhlcvFrame, target: str, settings: ProbeSettings) -> tuple[ProbeReport, int]:
    """One OHLCV target of ``bars`` through the probe (time-ordered, training rows whose
    target reaches into the test period purged); also the bars it had to drop."""
    rows = target_arrays(bars, target)
    report = probe_arrays(
        list(FEATURES), rows.x, rows.y, target, settings, times=rows.times, label_end=rows.known_at
    )
    return report, rows.dropped
