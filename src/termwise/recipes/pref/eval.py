"""Evaluating a preference model the way RewardBench does, plus calibration and uncertainty.

A pair is correct only when ``P(chosen > rejected) > 0.5`` strictly (a tie is wrong).
Accuracy per subset; a category's score is the example-weighted mean of its subsets (the
share of its pairs that are correct); overall is the unweighted mean of the categories
present. Calibration treats each pair as a binary prediction of the preferred response:
confidence ``max(p, 1 - p)``, correct as above.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from termwise.recipes.pref.data import PreferencePair

ECE_BINS = 15


def negative_log_likelihood(p: np.ndarray) -> float:
    """Mean ``-log P(chosen > rejected)`` (probabilities clipped at 1e-12)."""
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())


def brier_score(p: np.ndarray) -> float:
    """Mean ``(1 - P(chosen > rejected))^2``: the outcome is always 'chosen wins'."""
    return float(np.square(1.0 - p).mean())


def expected_calibration_error(p: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE (Guo et al. 2017) over ``bins`` equal-width confidence bins on [0, 1]:
    ``sum_b |B_b| / n * |accuracy(B_b) - confidence(B_b)|``."""
    return float(_ece_per_row(np.asarray(p, dtype=np.float64)[None], bins)[0])


def ece_sampling_floor(
    p: np.ndarray, bins: int = ECE_BINS, draws: int = 1000, seed: int = 0
) -> float:
    """The mean ECE of a perfectly calibrated model with these probabilities on this many
    pairs: each pair's winner drawn with its own ``p`` (the bias Kumar et al. 2019 subtract).
    ECE is biased upward on few pairs (14 calibrated pairs show about 0.2), so only the ECE
    above this floor is miscalibration."""
    p = np.asarray(p, dtype=np.float64)
    if len(p) == 0:
        return 0.0
    chosen_wins = np.random.default_rng(seed).random((draws, len(p))) < p
    return float(_ece_per_row(np.where(chosen_wins, p, 1.0 - p), bins).mean())


def _ece_per_row(p: np.ndarray, bins: int) -> np.ndarray:
    """ECE of each row of ``p`` [rows, pairs]: per bin, ``|B| * |accuracy - confidence|``
    is ``|correct in B - confidence summed over B|``."""
    rows, n = p.shape
    confidence = np.maximum(p, 1.0 - p)
    correct = (p > 0.5).astype(np.float64)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    cell = (index + bins * np.arange(rows)[:, None]).ravel()
    gap = np.bincount(cell, correct.ravel() - confidence.ravel(), rows * bins)
    return np.abs(gap.reshape(rows, bins)).sum(1) / n


def uncertainty_auroc(p: np.ndarray, std: np.ndarray) -> float | None:
    """AUROC of the predictive std for telling wrong pairs from right ones (0.5 = the
    uncertainty says nothing). None when every pair is right, or every one wrong."""
    from sklearn.metrics import roc_auc_score

    wrong = p <= 0.5
    if wrong.all() or not wrong.any():
        return None
    return float(roc_auc_score(wrong, std))


def evaluate_predictions(
    pairs: Sequence[PreferencePair], p: np.ndarray, std: np.ndarray | None = None
) -> dict[str, Any]:
    """Accuracy per subset and category, overall, NLL, Brier, ECE with its sampling floor
    (overall and per subset) and (with ``std``) the uncertainty AUROC."""
    correct = p > 0.5
    by_subset: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        by_subset[(pair.category, pair.subset)].append(i)
    categories: dict[str, dict[str, Any]] = {}
    for (category, subset), rows in sorted(by_subset.items()):
        entry = categories.setdefault(category, {"subsets": {}, "pairs": 0, "correct": 0})
        entry["subsets"][subset] = {
            "pairs": len(rows),
            "accuracy": float(correct[rows].mean()),
            "ece": expected_calibration_error(p[rows]),
            "ece_floor": ece_sampling_floor(p[rows]),
        }
        entry["pairs"] += len(rows)
        entry["correct"] += int(correct[rows].sum())
    for entry in categories.values():
        entry["accuracy"] = entry.pop("correct") / entry["pairs"]
    results: dict[str, Any] = {
        "pairs": len(pairs),
        "overall": float(np.mean([c["accuracy"] for c in categories.values()])),
        "categories": categories,
        "nll": negative_log_likelihood(p),
        "brier": brier_score(p),
        "ece": expected_calibration_error(p),
        "ece_floor": ece_sampling_floor(p),
        "ties": int((p == 0.5).sum()),
    }
    if std is not None and np.any(std > 0):
        results["uncertainty_auroc"] = uncertainty_auroc(p, std)
        results["mean_std"] = float(std.mean())
    return results


def print_results(results: dict[str, Any], console: Console, title: str = "Evaluation") -> None:
    table = Table(title=title)
    for column in ("category", "subset", "pairs", "accuracy", "ECE (sampling floor)"):
        table.add_column(column)
    for category, entry in results["categories"].items():
        for subset, sub in entry["subsets"].items():
            table.add_row(
                category, subset, str(sub["pairs"]), f"{sub['accuracy']:.3f}", _ece_cell(sub)
            )
        table.add_row(
            f"[b]{category}[/b]", "(all)", str(entry["pairs"]), f"{entry['accuracy']:.3f}", ""
        )
    console.print(table)
    line = (
        f"overall {results['overall']:.3f}  NLL {results['nll']:.3f}  "
        f"Brier {results['brier']:.3f}  ECE {_ece_cell(results)}"
    )
    if results.get("uncertainty_auroc") is not None:
        line += f"  uncertainty AUROC {results['uncertainty_auroc']:.3f}"
    console.print(line)
    calibration = results.get("calibration")
    if calibration is not None:
        console.print(
            f"temperature {calibration['temperature']:.3g}, power "
            f"{calibration.get('power', 1.0):.3g}: ECE {calibration['ece_raw']:.3f} "
            f"raw -> {results['ece']:.3f}, NLL {calibration['nll_raw']:.3f} -> "
            f"{results['nll']:.3f}, pairs that changed side {calibration['changed_side']}"
        )
    if results.get("reliability"):
        print_reliability(results["reliability"], console)


def _ece_cell(entry: Mapping[str, Any]) -> str:
    """``ECE (floor)``: the floor is what a perfectly calibrated model shows on as many pairs
    (results saved before the floor was reported have none)."""
    if "ece" not in entry:
        return ""
    floor = entry.get("ece_floor")
    return f"{entry['ece']:.3f}" + ("" if floor is None else f" ({floor:.3f})")


def print_reliability(bins: list[dict[str, Any]], console: Console) -> None:
    """The reliability diagram as a table: per confidence bin, how often it was right."""
    table = Table(title="Reliability (confidence = max(p, 1 - p))")
    for column in ("confidence bin", "pairs", "mean confidence", "accuracy", "gap"):
        table.add_column(column, justify="right")
    for row in bins:
        gap = row["accuracy"] - row["confidence"]
        table.add_row(
            row["bin"],
            str(row["pairs"]),
            f"{row['confidence']:.3f}",
            f"{row['accuracy']:.3f}",
            f"{gap:+.3f}",
        )
    console.print(table)


def category_subsets(pairs: Sequence[PreferencePair]) -> dict[str, set[str]]:
    """``category -> its subsets`` among ``pairs``."""
    found: dict[str, set[str]] = {}
    for pair in pairs:
        found.setdefault(pair.category, set()).add(pair.subset)
    return found


def calibration_coverage(
    source: Mapping[str, Any] | None, evaluated: Mapping[str, Any]
) -> dict[str, Any]:
    """Where a model's calibration was fitted (``source``: its manifest's record) against
    the categories and subsets of an evaluation's results: those it was not fitted on are
    a distribution its probabilities were not fitted for."""
    if source is None:
        return {"file": None, "unseen_categories": [], "unseen_subsets": []}
    fitted = source.get("categories")
    coverage: dict[str, Any] = {"file": source.get("file"), "pairs": source.get("pairs")}
    if not isinstance(fitted, Mapping):  # calibrated before the categories were recorded
        return coverage | {"categories": None, "unseen_categories": [], "unseen_subsets": []}
    seen_subsets = {(c, s) for c, subsets in fitted.items() for s in subsets}
    unseen_categories = sorted(c for c in evaluated if c not in fitted)
    unseen_subsets = sorted(
        f"{c}/{s}"
        for c, entry in evaluated.items()
        if c in fitted
        for s in entry.get("subsets", {})
        if (c, s) not in seen_subsets
    )
    return coverage | {
        "categories": {c: list(s) for c, s in fitted.items()},
        "unseen_categories": unseen_categories,
        "unseen_subsets": unseen_subsets,
    }


def print_coverage(coverage: Mapping[str, Any], console: Console) -> None:
    """One line on the calibration's source; a warning line for what it never saw."""
    if coverage.get("file") is None:
        console.print("calibration: none fitted (raw probabilities)")
        return
    fitted = coverage.get("categories")
    what = (
        "its categories were not recorded (calibrated by an older termwise)"
        if fitted is None
        else "categories " + ", ".join(f"{c} ({len(s)} subsets)" for c, s in fitted.items())
    )
    console.print(
        f"calibration fitted on {coverage['file']} ({coverage.get('pairs')} pairs; {what})",
        markup=False,
    )
    unseen = [*coverage["unseen_categories"], *coverage["unseen_subsets"]]
    if unseen:
        console.print(
            "warning: the calibration saw no pairs of "
            + ", ".join(unseen)
            + ": its probabilities were not fitted for them (refit with termwise pref "
            "calibrate on pairs like these, or read the raw ECE)",
            markup=False,
        )


def unseen_subset_accuracy(
    trained: Mapping[str, Sequence[str]] | None, evaluated: Mapping[str, Any]
) -> dict[str, Any]:
    """The mean accuracy over the evaluated subsets no training pair came from (``trained``:
    the manifest's ``category -> subsets``): the figure that carries to new prompts, where
    the overall one mixes in subsets the model has seen. Unnamed subsets (``all``) count as
    neither."""
    if trained is None:
        return {"recorded": False}
    seen = {(c, s) for c, subsets in trained.items() for s in subsets}
    unseen = {
        f"{c}/{s}": entry["accuracy"]
        for c, category in evaluated.items()
        for s, entry in category.get("subsets", {}).items()
        if s != "all" and (c, s) not in seen
    }
    mean = sum(unseen.values()) / len(unseen) if unseen else None
    return {"recorded": True, "subsets": sorted(unseen), "mean_accuracy": mean}


def print_unseen(unseen: Mapping[str, Any], console: Console) -> None:
    """One line: the unseen subsets' mean, or why there is none."""
    if not unseen["recorded"]:
        console.print(
            "unseen subsets: the model does not record its training subsets (saved "
            "by an older termwise)"
        )
    elif unseen["mean_accuracy"] is None:
        console.print("unseen subsets: none (every named subset here was in the training pairs)")
    else:
        names = unseen["subsets"]
        console.print(
            f"mean over the {len(names)} subset(s) the model never trained on: "
            f"{unseen['mean_accuracy']:.3f} ({', '.join(names)}); the figure for new prompts",
            markup=False,
        )
