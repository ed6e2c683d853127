"""``termwise lvm diagnose-data``: is there a forward/backward asymmetry, and where from?

On raw documents, mean cos(s_t, s_{t+k}) over every t with both ends in the document: for
k = +1 and k = -1 this averages the same adjacent pairs, so the asymmetry is ~0 by
construction. Windows as the pipeline cuts them compare other pairs (the last context
sentence with the target ``offset`` ahead, with its own predecessor, ...): an asymmetry
that appears only there comes from how windows are cut, not from the language.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from torch import Tensor

from termwise.recipes.lvm.data import Corpus, Windows

OFFSETS = range(-3, 4)
SYMMETRIC = 0.005  # |forward - backward| below this: no asymmetry worth a claim


def raw_offsets(corpus: Corpus, documents: list[int]) -> dict[int, float]:
    sums = {k: 0.0 for k in OFFSETS}
    counts = {k: 0 for k in OFFSETS}
    for index in documents:
        vectors = corpus.document(index)
        for k in OFFSETS:
            if abs(k) >= len(vectors):
                continue
            a, b = (
                (vectors[: len(vectors) - k], vectors[k:])
                if k >= 0
                else (vectors[-k:], vectors[:k])
            )
            sums[k] += float((a * b).sum(-1).sum())
            counts[k] += len(a)
    return {k: sums[k] / counts[k] for k in OFFSETS if counts[k]}


def _mean_cos(corpus: Corpus, first: Tensor, second: Tensor) -> float:
    return float((corpus.vectors[first] * corpus.vectors[second]).sum(-1).mean())


def window_pairs(corpus: Corpus, windows: Windows, offset: int) -> dict[str, float]:
    last = windows.context[:, -1]
    pairs = {
        f"ctx[-1] vs target (forward, +{offset})": _mean_cos(corpus, last, windows.target),
        "ctx[-1] vs target's predecessor": _mean_cos(corpus, last, windows.previous),
        "target vs its predecessor (+1)": _mean_cos(corpus, windows.target, windows.previous),
    }
    if windows.context.shape[1] > 1:
        pairs["ctx[-1] vs ctx[-2] (backward, -1)"] = _mean_cos(corpus, last, windows.context[:, -2])
    ends = corpus.offsets[windows.document + 1]
    after = windows.target + 1
    valid = after < ends
    if valid.any():
        pairs["target vs target_next (+1)"] = _mean_cos(corpus, windows.target[valid], after[valid])
    return pairs


def diagnose(corpus: Corpus, documents: list[int], windows: Windows, offset: int) -> dict[str, Any]:
    raw = raw_offsets(corpus, documents)
    pairs = window_pairs(corpus, windows, offset)
    raw_gap = raw.get(1, 0.0) - raw.get(-1, 0.0)
    forward = pairs[f"ctx[-1] vs target (forward, +{offset})"]
    backward = pairs.get("ctx[-1] vs ctx[-2] (backward, -1)", forward)
    window_gap = forward - backward
    if abs(raw_gap) > SYMMETRIC:
        verdict = (
            "the documents themselves are asymmetric (raw forward - backward "
            f"{raw_gap:+.4f}): look for reordered or duplicated sentences"
        )
    elif abs(window_gap) > SYMMETRIC:
        verdict = (
            f"the raw data is symmetric (forward - backward {raw_gap:+.4f}) but the windows are "
            f"not ({window_gap:+.4f}): the asymmetry comes from how windows are cut (a "
            f"+{offset} forward pair against a -1 backward pair), not from the language"
        )
    else:
        verdict = (
            f"no direction bias: raw {raw_gap:+.4f}, windows {window_gap:+.4f} "
            f"(|gap| <= {SYMMETRIC})"
        )
    return {
        "raw_cos_by_offset": {str(k): v for k, v in raw.items()},
        "raw_forward_minus_backward": raw_gap,
        "window_pairs": pairs,
        "window_forward_minus_backward": window_gap,
        "verdict": verdict,
    }


def print_diagnosis(report: dict[str, Any], console: Console) -> None:
    raw = Table(title="Raw documents: mean cos(s_t, s_{t+k})")
    raw.add_column("k")
    raw.add_column("mean cos")
    for k, value in report["raw_cos_by_offset"].items():
        raw.add_row(k, f"{value:.4f}")
    console.print(raw)
    windows = Table(title="Windows as the pipeline builds them")
    windows.add_column("pair")
    windows.add_column("mean cos")
    for name, value in report["window_pairs"].items():
        windows.add_row(name, f"{value:.4f}")
    console.print(windows)
    console.print(f"Verdict: {report['verdict']}", markup=False)
