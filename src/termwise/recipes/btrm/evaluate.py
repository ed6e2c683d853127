"""btrm's held-out evaluation: per head, the AUC of its positives against each negative
tier and each source within a tier, and the median positive score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import TIER_NAMES
from termwise.recipes.btrm.model import MultiHeadRewardModel
from termwise.recipes.btrm.prepared import Prepared, score_rows


def _auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    if not len(positive) or not len(negative):
        return None
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    return float(roc_auc_score(labels, np.r_[positive, negative]))


def source_name(key: str) -> str:
    path, _, tiers = key.partition("|")
    return Path(path).stem + (f"[{tiers}]" if tiers else "")


def evaluate_model(
    model: MultiHeadRewardModel, prepared: Prepared, config: BtrmConfig
) -> dict[str, Any]:
    """Per head on held-out rows: AUC vs each negative tier (``semi_firm_neg``), vs each
    source within each tier (``semi_firm_neg:<source>``, the (head, other-source) pairs),
    and the median positive score."""
    table = prepared.table
    rows = table.split(heldout=True)
    scores = score_rows(model, prepared, rows)
    results: dict[str, Any] = {}
    for h, head in enumerate(table.heads):
        pos = scores[table.positive[rows, h], h]
        tiers = table.negative_tier[rows, h]
        negatives = scores[tiers > 0, h]
        entry: dict[str, Any] = {
            "positives": int(len(pos)),
            "median_positive": float(np.median(pos)) if len(pos) else None,
            "median_negative": float(np.median(negatives)) if len(negatives) else None,
            "auc": {},
        }
        for code, name in TIER_NAMES.items():
            if name != "soft_neg":
                entry["auc"][name] = _auc(pos, scores[tiers == code, h])
            in_tier = tiers == code
            for key in np.unique(table.source[rows][in_tier]):
                chosen = in_tier & (table.source[rows] == key)
                entry["auc"][f"{name}:{source_name(key)}"] = _auc(pos, scores[chosen, h])
        results[head] = entry
    return results


def worst_source(auc: dict[str, float | None], tier: str) -> str:
    """``AUC (source)`` of the tier's hardest source, the source named in full."""
    per_source = {k: v for k, v in auc.items() if k.startswith(f"{tier}:") and v is not None}
    if not per_source:
        return "-"
    key, value = min(per_source.items(), key=lambda kv: kv[1])
    return f"{value:.3f} ({key.split(':', 1)[1]})"


def print_evaluation(results: dict[str, Any], console: Console) -> None:
    table = Table(title="Held-out evaluation per head (AUC of positives vs each negative set)")
    for column in ("head", "positives", "median score", "semi_firm", "furthest"):
        table.add_column(column)
    for column in ("worst soft source", "worst semi-firm source", "worst furthest source"):
        table.add_column(column, overflow="fold")
    for head, entry in results.items():
        auc = entry["auc"]
        table.add_row(
            head,
            str(entry["positives"]),
            _fmt(entry["median_positive"]),
            _fmt(auc.get("semi_firm_neg")),
            _fmt(auc.get("furthest_neg")),
            worst_source(auc, "soft_neg"),
            worst_source(auc, "semi_firm_neg"),
            worst_source(auc, "furthest_neg"),
        )
    console.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
