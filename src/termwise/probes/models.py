"""Whole-table probes: a tiny linear model and a small MLP, each against the same model
trained on shuffled labels, with bootstrap confidence intervals on every metric."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from termwise.probes import weighted_metrics as wm
from termwise.probes.nulls import shuffled_indices
from termwise.probes.target import TaskKind

MAX_TRAIN_ROWS = 20_000  # also the most rows the training metrics are computed on
MAX_EVAL_ROWS = 20_000
BOOTSTRAPS = 200
PRIMARY = {"binary": "auc", "multiclass": "auc", "regression": "r2"}


@dataclass
class Interval:
    value: float
    low: float
    high: float


@dataclass
class ModelProbe:
    """Train/test metrics of one model on the real labels and on shuffled labels."""

    model: str
    train: dict[str, Interval] = field(default_factory=dict)
    test: dict[str, Interval] = field(default_factory=dict)
    control_train: dict[str, Interval] = field(default_factory=dict)
    control_test: dict[str, Interval] = field(default_factory=dict)
    train_rows: int = 0
    test_rows: int = 0


def _scores(
    w: np.ndarray, y: np.ndarray, output: Any, kind: TaskKind, classes: np.ndarray
) -> dict[str, np.ndarray]:
    """Every metric under each row weighting in ``w`` ([B, n])."""
    if kind == "regression":
        return {"r2": wm.r2(w, y, output), "mae": wm.mae(w, y, output)}
    labels, proba = output
    return {
        "accuracy": wm.accuracy(w, y, labels),
        "f1": wm.f1(w, y, labels, classes, binary=kind == "binary"),
        "auc": wm.auc(w, y, proba, classes),
    }


def _with_interval(
    y: np.ndarray, output: Any, kind: TaskKind, classes: np.ndarray, seed: int, block: int = 1
) -> dict[str, Interval]:
    point = _scores(np.ones((1, len(y))), y, output, kind, classes)
    weights = wm.bootstrap_weights(len(y), BOOTSTRAPS, seed, block)
    boot = _scores(weights, y, output, kind, classes)
    result = {}
    for name, values in boot.items():
        finite = values[np.isfinite(values)]
        low, high = np.quantile(finite, [0.025, 0.975]) if len(finite) else (np.nan, np.nan)
        result[name] = Interval(float(point[name][0]), float(low), float(high))
    return result


def _predict(model: Any, x: np.ndarray, kind: TaskKind) -> Any:
    if kind == "regression":
        return model.predict(x)
    return (model.predict(x), model.predict_proba(x))


MLP_EARLY_STOPPING_ROWS = 1000  # below, a 10 % validation split is too small to stop on


def _build(name: str, kind: TaskKind, seed: int, rows: int) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "linear":
        head: Any = Ridge(alpha=1.0) if kind == "regression" else LogisticRegression(max_iter=1000)
    else:
        # Early stopping on a tiny validation split stops at once (a 442-row table ended
        # with a training AUC of 0.499); small tables train for a fixed number of epochs.
        early = rows >= MLP_EARLY_STOPPING_ROWS
        common = {
            "hidden_layer_sizes": (32,),
            "alpha": 1e-3,
            "max_iter": 200 if early else 500,
            "early_stopping": early,
            "random_state": seed,
        }
        if kind != "regression":
            return make_pipeline(StandardScaler(), MLPClassifier(**common))
        from sklearn.compose import TransformedTargetRegressor

        # A network fits a standardised target; raw targets (a disease score of ~150) leave
        # it far from the data after a few hundred epochs.
        return TransformedTargetRegressor(
            make_pipeline(StandardScaler(), MLPRegressor(**common)), transformer=StandardScaler()
        )
    return make_pipeline(StandardScaler(), head)


def probe_models(
    x: np.ndarray,
    y: np.ndarray,
    kind: TaskKind,
    train: np.ndarray,
    test: np.ndarray,
    seed: int,
    time_ordered: bool,
) -> tuple[list[ModelProbe], dict[str, int]]:
    """``linear`` (logistic or ridge regression) and ``mlp`` (one hidden layer of 32), each
    run twice: on the real target, and on a shuffled one (the whole target shuffled before
    the split, so the control is trained and scored on labels that carry no relation to
    the features; scoring it on the real test labels instead would let a random weight
    vector that happens to align with a real signal look like a strong control).

    Training uses at most 20,000 rows and evaluation at most 20,000 (seeded subsamples): the
    question is whether any signal exists, which a subsample answers with the same validity
    (the control sees the same rows) at a small cost in power.
    """
    rng = np.random.default_rng(seed)
    fit_rows = (
        train
        if len(train) <= MAX_TRAIN_ROWS
        else np.sort(rng.choice(train, MAX_TRAIN_ROWS, replace=False))
    )
    eval_test = (
        test
        if len(test) <= MAX_EVAL_ROWS
        else np.sort(rng.choice(test, MAX_EVAL_ROWS, replace=False))
    )
    shuffled = y[shuffled_indices(len(y), 1, seed + 7, time_ordered)[0]]
    # Held-out rows of a time series overlap and are autocorrelated: resample them in blocks.
    block = wm.block_length(len(eval_test)) if time_ordered else 1
    classes = np.unique(y)
    probes = []
    for name in ("linear", "mlp"):
        probe = ModelProbe(name, train_rows=len(fit_rows), test_rows=len(eval_test))
        for labels, train_slot, test_slot in (
            (y, "train", "test"),
            (shuffled, "control_train", "control_test"),
        ):
            model = _build(name, kind, seed, len(fit_rows))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter on shuffled labels
                model.fit(x[fit_rows], labels[fit_rows])
            fitted = _predict(model, x[fit_rows], kind)
            held_out = _predict(model, x[eval_test], kind)
            setattr(
                probe, train_slot, _with_interval(labels[fit_rows], fitted, kind, classes, seed)
            )
            setattr(
                probe,
                test_slot,
                _with_interval(labels[eval_test], held_out, kind, classes, seed + 1, block),
            )
        probes.append(probe)
    usage = {
        "train_rows": len(fit_rows),
        "test_rows": len(eval_test),
        "bootstraps": BOOTSTRAPS,
        "block": block,
    }
    return probes, usage
