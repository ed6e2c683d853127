"""Per-feature probes: correlation, rank correlation, mutual information and a one-feature
model, each against its shuffled-target null, corrected across features (Benjamini-Hochberg).

Everything is vectorised over the shuffles: the null of a correlation is one matrix
product of the standardised features with a block of shuffled targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata

from termwise.probes.mutual_info import jitter, mutual_info_discrete
from termwise.probes.nulls import (
    benjamini_hochberg,
    iter_shuffles,
    permutation_pvalue,
    shuffled_indices,
)
from termwise.probes.target import TaskKind

STATS = ("pearson", "spearman", "mutual_info", "one_feature")
N_BINS = 10
CHUNK = 64  # shuffles per matrix product (bounds memory at CHUNK x rows floats)


@dataclass
class FeatureResult:
    """One feature's statistics. ``one_feature`` is the held-out score of a 10-bin lookup
    model on this feature alone against the baseline: log-likelihood gain in nats per row
    (classification) or R^2 (regression)."""

    name: str
    values: dict[str, float] = field(default_factory=dict)
    p: dict[str, float] = field(default_factory=dict)
    q: dict[str, float] = field(default_factory=dict)

    def significant(self, alpha: float) -> list[str]:
        return [s for s, q in self.q.items() if q <= alpha]


@dataclass
class FeatureProbeSettings:
    permutations: int = 200
    mi_rows: int = 2000
    mi_permutations: int = 200
    seed: int = 0
    time_ordered: bool = False
    alpha: float = 0.0125  # the per-statistic level the verdict uses (0.05 / 4 statistics)


def _standardize(a: np.ndarray) -> np.ndarray:
    sd = a.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - a.mean(axis=0)) / sd
    return np.where(sd > 0, out, 0.0)


def abs_correlation_nulls(
    x: np.ndarray, y: np.ndarray, count: int, seed: int, time_ordered: bool
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """|Pearson| and |Spearman| of every column with ``y``, each with its null over the
    same ``count`` shuffles of ``y`` (generating the shuffles costs more than using them)."""
    n = len(y)
    columns = {
        "pearson": (_standardize(x), _standardize(y[:, None])[:, 0]),
        "spearman": (_standardize(rankdata(x, axis=0)), _standardize(rankdata(y)[:, None])[:, 0]),
    }
    as32 = {k: (a.astype(np.float32), b.astype(np.float32)) for k, (a, b) in columns.items()}
    nulls: dict[str, list[np.ndarray]] = {k: [] for k in columns}
    for orders in iter_shuffles(n, count, seed, time_ordered, CHUNK):
        for name, (xs, ys) in as32.items():
            nulls[name].append(np.abs(ys[orders] @ xs) / n)
    return {
        name: (np.abs(ys @ xs) / n, np.concatenate(nulls[name]).astype(float))
        for name, (xs, ys) in as32.items()
    }


def correlation_shuffles(settings: FeatureProbeSettings, features: int) -> int:
    """Shuffles for the correlation nulls: enough that the smallest attainable p-value,
    1 / (B + 1), sits 2x below the first Benjamini-Hochberg threshold at ``alpha`` (so a
    strong feature can pass the correction over all features), and at least 10x the base
    count: each is a single matrix product."""
    needed = int(2 * features / settings.alpha)
    return max(10 * settings.permutations, needed)


def _bins(train_x: np.ndarray, x: np.ndarray) -> np.ndarray:
    edges = np.unique(np.quantile(train_x, np.linspace(0, 1, N_BINS + 1)[1:-1]))
    return np.searchsorted(edges, x, side="right")


def one_feature_null(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    kind: TaskKind,
    orders: np.ndarray,
) -> tuple[float, np.ndarray]:
    """Held-out score of a bin-lookup model on one feature, observed and with shuffled
    training targets (one [B] vector). Classification: log-likelihood gain of the class
    frequencies per bin over the overall ones; regression: R^2 of the mean per bin."""
    train_bins, test_bins = _bins(x_train, x_train), _bins(x_train, x_test)
    n_bins = int(max(train_bins.max(), test_bins.max())) + 1
    onehot = np.zeros((len(x_train), n_bins), dtype=np.float32)
    onehot[np.arange(len(x_train)), train_bins] = 1.0
    all_orders = np.concatenate([np.arange(len(y_train))[None, :], orders])
    scores = np.concatenate(
        [
            _bin_model_scores(
                onehot, y_train[all_orders[i : i + CHUNK]], test_bins, y_test, n_bins, kind
            )
            for i in range(0, len(all_orders), CHUNK)
        ]
    )
    return float(scores[0]), scores[1:]


def _bin_model_scores(
    onehot: np.ndarray,
    y_blocks: np.ndarray,
    test_bins: np.ndarray,
    y_test: np.ndarray,
    n_bins: int,
    kind: TaskKind,
) -> np.ndarray:
    counts = onehot.sum(axis=0)  # training rows per bin
    if kind == "regression":
        global_mean = y_blocks.mean(axis=1)  # [B]
        sums = (y_blocks.astype(np.float32) @ onehot).T  # [bins, B]
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts[:, None] > 0, sums / counts[:, None], global_mean[None, :])
        pred = means[test_bins]  # [n_test, B]
        sse = ((pred - y_test[:, None]) ** 2).sum(axis=0)
        sst = ((y_test - y_test.mean()) ** 2).sum()
        return 1.0 - sse / max(sst, 1e-12)
    # Classification: held-out log-likelihood gain (nats per row) of the per-bin class
    # frequencies (add-one smoothed) over the overall training frequencies. A proper score:
    # unlike accuracy it does not hinge on which class wins a near-tied bin.
    classes = np.unique(np.concatenate([y_blocks[0], y_test]))
    per_class = np.stack([((y_blocks == c).astype(np.float32) @ onehot).T for c in classes])
    log_p_bin = np.log((per_class + 1.0) / (counts[None, :, None] + len(classes)))
    base = per_class.sum(axis=1)  # [classes, B]; the same for every shuffle
    log_p_base = np.log((base + 1.0) / (base.sum(axis=0, keepdims=True) + len(classes)))
    test_index = np.searchsorted(classes, y_test)
    table = np.zeros((len(classes), n_bins))
    np.add.at(table, (test_index, test_bins), 1.0)
    gain = np.einsum("cj,cjb->b", table, log_p_bin) - table.sum(axis=1) @ log_p_base
    return gain / len(y_test)


def mutual_info_null(
    x: np.ndarray, y: np.ndarray, kind: TaskKind, settings: FeatureProbeSettings
) -> tuple[np.ndarray, np.ndarray, int]:
    """kNN mutual information (nats; Ross 2014, 3 neighbours) on at most ``mi_rows`` rows,
    with its null over the same rows. A continuous target is binned in deciles first (the
    estimator needs a discrete target). The subsample keeps the test valid (the same rows
    for statistic and null) at the price of power; the report says how many rows."""
    rng = np.random.default_rng(settings.seed + 1)
    rows = np.arange(len(y))
    if len(rows) > settings.mi_rows:
        rows = np.sort(rng.choice(len(y), settings.mi_rows, replace=False))
    xs = jitter(x[rows], settings.seed)
    ys = y[rows]
    if kind == "regression":
        edges = np.unique(np.quantile(ys, np.linspace(0, 1, 11)[1:-1]))
        ys = np.searchsorted(edges, ys, side="right")
    labels = np.unique(ys, return_inverse=True)[1]
    orders = shuffled_indices(
        len(rows), settings.mi_permutations, settings.seed + 2, settings.time_ordered
    )

    def mi(target: np.ndarray) -> np.ndarray:
        return np.array([mutual_info_discrete(xs[:, j], target) for j in range(xs.shape[1])])

    null = np.stack([mi(labels[order]) for order in orders])
    return mi(labels), null, len(rows)


def probe_features(
    names: list[str],
    x: np.ndarray,
    y: np.ndarray,
    kind: TaskKind,
    train: np.ndarray,
    test: np.ndarray,
    settings: FeatureProbeSettings,
) -> tuple[list[FeatureResult], dict[str, int]]:
    """All per-feature statistics with BH-corrected p-values; also how many rows and
    shuffles each statistic used. ``y`` is numeric (class codes for classification)."""
    results = [FeatureResult(name) for name in names]
    observed: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray] = {}
    corr_shuffles = correlation_shuffles(settings, x.shape[1])
    if kind != "multiclass":  # correlation with unordered class codes means nothing
        correlations = abs_correlation_nulls(
            x, y, corr_shuffles, settings.seed, settings.time_ordered
        )
        for name, (values, null) in correlations.items():
            observed[name], nulls[name] = values.astype(float), null
    observed["mutual_info"], nulls["mutual_info"], mi_rows = mutual_info_null(x, y, kind, settings)
    train_orders = shuffled_indices(
        len(train), settings.permutations, settings.seed + 3, settings.time_ordered
    )
    one = [
        one_feature_null(x[train, j], y[train], x[test, j], y[test], kind, train_orders)
        for j in range(x.shape[1])
    ]
    observed["one_feature"] = np.array([o for o, _ in one])
    nulls["one_feature"] = np.stack([n for _, n in one], axis=1)
    for stat, values in observed.items():
        p = permutation_pvalue(values, nulls[stat])
        q = benjamini_hochberg(p)
        for j, result in enumerate(results):
            result.values[stat] = float(values[j])
            result.p[stat] = float(p[j])
            result.q[stat] = float(q[j])
    usage = {
        "rows": len(y),
        "permutations": settings.permutations,
        "correlation_permutations": corr_shuffles if kind != "multiclass" else 0,
        "mi_rows": mi_rows,
        "mi_permutations": settings.mi_permutations,
    }
    return results, usage
