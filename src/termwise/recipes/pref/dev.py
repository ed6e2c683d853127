"""A preference model on a file of pairs: their scores, and every metric of
:mod:`termwise.recipes.pref.eval` under a calibration (``termwise pref eval``, the dev pairs
of a training run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from termwise.recipes.pref.calibration import RAW, Calibration, probabilities, reliability_table
from termwise.recipes.pref.data import OnBadRecord, PreferencePair, encode_pairs, read_pairs
from termwise.recipes.pref.eval import (
    evaluate_predictions,
    expected_calibration_error,
    negative_log_likelihood,
)
from termwise.recipes.pref.model import PreferenceModel
from termwise.recipes.pref.score import pair_scores


def dev_scores(
    model: PreferenceModel,
    tokenizer: Any,
    path: Path,
    max_length: int,
    n_samples: int,
    on_bad_record: OnBadRecord = "error",
) -> tuple[list[PreferencePair], np.ndarray, int]:
    """The pairs of ``path``, their scores ``[draws, pairs]`` and the bad records skipped."""
    pairs, report = read_pairs(path, on_bad_record)
    encoded = encode_pairs(tokenizer, pairs, max_length)
    scores = pair_scores(model, encoded, int(tokenizer.pad_token_id or 0), n_samples)
    return pairs, scores, len(report.bad)


def evaluate_scores(
    pairs: list[PreferencePair], scores: np.ndarray, kind: str, calibration: Calibration
) -> dict[str, Any]:
    """Every metric of :func:`evaluate_predictions` under ``calibration``, the raw NLL, ECE
    and accuracy beside them, and the reliability diagram's bins."""
    p, std = probabilities(scores, calibration)
    results = evaluate_predictions(pairs, p, std if kind == "bayes_gpm" else None)
    raw = probabilities(scores)[0]
    results["calibration"] = {
        "temperature": calibration.temperature,
        "power": calibration.power,
        "ece_raw": expected_calibration_error(raw),
        "nll_raw": negative_log_likelihood(raw),
        "overall_raw": evaluate_predictions(pairs, raw)["overall"],
        "changed_side": int(((raw > 0.5) != (p > 0.5)).sum()),
    }
    results["reliability"] = [
        {"bin": b, "pairs": n, "confidence": c, "accuracy": a}
        for b, n, c, a in reliability_table(p)
    ]
    return results


def evaluate_file(
    model: PreferenceModel,
    tokenizer: Any,
    path: Path,
    max_length: int,
    n_samples: int,
    on_bad_record: OnBadRecord = "error",
    calibration: Calibration = RAW,
) -> dict[str, Any]:
    """Every metric of :func:`evaluate_scores` on the pairs in ``path``."""
    pairs, scores, skipped = dev_scores(
        model, tokenizer, path, max_length, n_samples, on_bad_record
    )
    results = evaluate_scores(pairs, scores, model.kind, calibration)
    results["skipped_records"] = skipped
    return results
