"""What the target looks like: task kind, class balance, baseline, entropy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from termwise.errors import TermwiseUserError

TaskKind = Literal["binary", "multiclass", "regression"]
MAX_CLASSES = 20


@dataclass
class TargetSummary:
    """Summary of the target column. ``baseline`` is the majority-class accuracy
    (classification) or the R^2 of predicting the mean, 0 (regression)."""

    kind: TaskKind
    rows: int
    classes: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    positive_rate: float | None = None
    baseline: float = 0.0
    entropy: float | None = None
    max_entropy: float | None = None
    description: str = ""


def infer_kind(values: np.ndarray, requested: str = "auto") -> TaskKind:
    """``binary``/``multiclass`` for few distinct values (or text/bool), else ``regression``."""
    if requested == "regression":
        return "regression"
    distinct = np.unique(values)
    numeric = np.issubdtype(values.dtype, np.number) and values.dtype != bool
    if requested == "classification" or not numeric or len(distinct) <= MAX_CLASSES:
        return "binary" if len(distinct) == 2 else "multiclass"
    return "regression"


MIN_ROWS = 20
MIN_PER_CLASS = 5  # each class must reach both splits, and be more than a single row there


def check_target(values: np.ndarray, kind: TaskKind, name: str) -> None:
    """Refuse a target that no probe can answer about, saying why: too few rows, a
    constant, or classes too rare to appear in both the training and the test split."""
    if len(values) < MIN_ROWS:
        raise TermwiseUserError(
            f"target {name!r}: only {len(values)} usable rows; a probe needs at least {MIN_ROWS}"
        )
    distinct, counts = np.unique(values, return_counts=True)
    if len(distinct) == 1 or (kind == "regression" and float(np.std(values.astype(float))) == 0):
        raise TermwiseUserError(
            f"target {name!r} is constant (every row is {_plain(distinct[0])}): nothing to predict"
        )
    if kind == "regression":
        return
    rare = [
        f"{_plain(c)} ({n} rows)"
        for c, n in zip(distinct, counts, strict=True)
        if n < MIN_PER_CLASS
    ]
    if rare:
        shown = ", ".join(rare[:5]) + (f" and {len(rare) - 5} more" if len(rare) > 5 else "")
        raise TermwiseUserError(
            f"target {name!r}: {len(rare)} of {len(distinct)} classes have fewer than "
            f"{MIN_PER_CLASS} rows: {shown}; merge rare classes, or probe it with "
            "--task regression if it is a number"
        )


def _plain(value: object) -> str:
    """A NumPy scalar as the user wrote it (``1``, not ``np.int64(1)``)."""
    item = getattr(value, "item", None)
    return repr(item() if callable(item) else value)


def summarize_target(values: np.ndarray, kind: TaskKind) -> TargetSummary:
    rows = len(values)
    if kind == "regression":
        numbers = values.astype(float)
        return TargetSummary(
            kind,
            rows,
            baseline=0.0,
            description=(
                f"regression target: mean {numbers.mean():.4g}, sd "
                f"{numbers.std():.4g}; baseline R^2 of predicting the mean is 0"
            ),
        )
    classes, counts = np.unique(values, return_counts=True)
    shares = counts / rows
    entropy = float(-(shares * np.log(shares)).sum())
    max_entropy = math.log(len(classes)) if len(classes) > 1 else 0.0
    baseline = float(shares.max())
    summary = TargetSummary(
        kind,
        rows,
        [str(c) for c in classes],
        [int(c) for c in counts],
        baseline=baseline,
        entropy=entropy,
        max_entropy=max_entropy,
    )
    if kind == "binary":
        summary.positive_rate = float(shares[1])
    summary.description = describe_entropy(entropy, max_entropy, baseline)
    return summary


def describe_entropy(entropy: float, max_entropy: float, baseline: float) -> str:
    """Say what label entropy means, and what it does not.

    Entropy measures how evenly the classes are spread, a property of the label alone.
    Near its maximum (ln 2 = 0.693 for two classes) the label is BALANCED, not random: a
    balanced label can be perfectly predictable from the features. Whether it is
    predictable is what the feature probes and model probes below measure.
    """
    ratio = entropy / max_entropy if max_entropy > 0 else 0.0
    balance = "balanced" if ratio > 0.95 else "mildly imbalanced" if ratio > 0.7 else "imbalanced"
    return (
        f"label entropy {entropy:.3f} nats of at most {max_entropy:.3f} (ln k): the classes "
        f"are {balance} (majority baseline {100 * baseline:.1f} %). Entropy describes the "
        "label alone; it says nothing about whether the features predict it."
    )
