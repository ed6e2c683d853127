"""The report's figures, each a PNG (matplotlib, no pyplot state) or None when the run
has nothing for it. Findings are marked on the curves at the step they first fired."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from termwise.report.run_files import RunFiles

Marker = tuple[int, str]  # (step, label) of a finding's first firing


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _mark(ax: Axes, markers: Sequence[Marker]) -> None:
    for step, label in markers:
        ax.axvline(step, color="crimson", linestyle="--", linewidth=0.8, alpha=0.7)
        ax.annotate(
            label,
            (step, 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            color="crimson",
            rotation=90,
            va="top",
            ha="right",
        )


def terms(run: RunFiles) -> list[str]:
    """Term names: every ``<term>.share`` that has a ``<term>.raw`` beside it."""
    return [
        n[: -len(".share")] for n in run.names_ending(".share") if f"{n[:-6]}.raw" in run.scalars
    ]


def shares(run: RunFiles, markers: Sequence[Marker]) -> bytes | None:
    names = terms(run)
    if not names:
        return None
    steps = run.scalars[f"{names[0]}.share"][0]
    columns = [run.scalars[f"{n}.share"][1] for n in names]
    if any(len(c) != len(steps) for c in columns):  # a run still writing its last row
        length = min(len(c) for c in columns)
        steps, columns = steps[:length], [c[:length] for c in columns]
    figure = Figure(figsize=(9, 3.6))
    ax = figure.subplots()
    ax.stackplot(steps, columns, labels=names, alpha=0.85)
    ax.set(xlabel="step", ylabel="share of the total", ylim=(0, 1), title="Each term's share")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    _mark(ax, markers)
    return _png(figure)


def _lines(
    run: RunFiles,
    names: Sequence[str],
    title: str,
    markers: Sequence[Marker] = (),
    ylabel: str = "",
    log: bool = False,
) -> bytes | None:
    present = [n for n in names if n in run.scalars]
    if not present:
        return None
    figure = Figure(figsize=(9, 3.2))
    ax = figure.subplots()
    for name in present:
        steps, values = run.scalars[name]
        ax.plot(steps, values, label=name, linewidth=1.2)
    if log and all(v > 0 for n in present for v in run.scalars[n][1]):
        ax.set_yscale("log")
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    _mark(ax, markers)
    return _png(figure)


def raw_terms(run: RunFiles, markers: Sequence[Marker]) -> bytes | None:
    return _lines(
        run, [f"{n}.raw" for n in terms(run)], "Raw term values", markers, "raw (unweighted)", True
    )


def optimisation(run: RunFiles) -> bytes | None:
    if "lr" not in run.scalars and "grad_norm" not in run.scalars:
        return None
    figure = Figure(figsize=(9, 3.0))
    axes = figure.subplots(1, 2)
    for ax, name in zip(axes, ("lr", "grad_norm"), strict=True):
        if name in run.scalars:
            ax.plot(*run.scalars[name], linewidth=1.2)
        ax.set(xlabel="step", title=name)
    return _png(figure)


def free_bits(run: RunFiles, markers: Sequence[Marker]) -> bytes | None:
    kl = run.names_ending(".kl_raw") + run.names_ending(".kl_after")
    reduction = run.names_ending(".penalty_reduction")
    if not kl and not reduction:
        return None
    figure = Figure(figsize=(9, 3.2))
    left, right = figure.subplots(1, 2)
    for name in kl:
        left.plot(*run.scalars[name], label=name, linewidth=1.2)
    left.set(xlabel="step", title="KL before and after free bits")
    left.legend(fontsize=8)
    for name in reduction:
        right.plot(*run.scalars[name], label=name, linewidth=1.2)
    right.axhspan(0.2, 0.4, color="green", alpha=0.1, label="healthy band")
    right.set(xlabel="step", title="penalty reduction", ylim=(0, 1.05))
    right.legend(fontsize=8)
    _mark(left, markers)
    _mark(right, markers)
    return _png(figure)


def autoscale(run: RunFiles, markers: Sequence[Marker]) -> bytes | None:
    scaled = [n[: -len(".at_bound")] for n in run.names_ending(".at_bound")]
    names = [f"{t}.weight" for t in scaled] + [f"{t}.wanted_weight" for t in scaled]
    return _lines(run, names, "Auto-scaled weights (lambda_eff)", markers, "weight", True)


def evaluation_curves(run: RunFiles, limit: int = 18) -> bytes | None:
    """One small panel per evaluation metric (their scales differ too much to share axes)."""
    names = sorted(n for n in run.scalars if n.startswith("eval/"))[:limit]
    if not names:
        return None
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(9, 1.9 * rows))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        steps, values = run.scalars[name]
        ax.plot(steps, values, marker="." if len(steps) < 30 else None, linewidth=1.2)
        ax.set_title(name.removeprefix("eval/"), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    return _png(figure)


def head_aucs(results: dict[str, Any]) -> bytes | None:
    """btrm ``eval.json``: per head, the AUC against each negative tier (worst soft
    negative source apart)."""
    heads = {h: e["auc"] for h, e in results.items() if isinstance(e, dict) and "auc" in e}
    if not heads:
        return None
    tiers = sorted({k for auc in heads.values() for k in auc if ":" not in k})  # not per source
    figure = Figure(figsize=(9, 0.6 + 0.45 * len(heads) * max(1, len(tiers) + 1) / 2))
    ax = figure.subplots()
    width = 0.8 / (len(tiers) + 1)
    for i, tier in enumerate([*tiers, "worst soft negative"]):
        values = []
        for auc in heads.values():
            if tier == "worst soft negative":
                soft = [v for k, v in auc.items() if k.startswith("soft_neg:") and v is not None]
                values.append(min(soft) if soft else 0.0)
            else:
                values.append(auc.get(tier) or 0.0)
        ax.barh([j + i * width for j in range(len(heads))], values, height=width, label=tier)
    ax.set_yticks([j + 0.4 - width / 2 for j in range(len(heads))], list(heads), fontsize=8)
    ax.set(xlim=(0.5, 1.0), xlabel="AUC (positives vs the tier)", title="Per-head AUC")
    ax.legend(fontsize=8, loc="lower left")
    return _png(figure)


def reliability(results: dict[str, Any]) -> bytes | None:
    """pref ``eval.json``: the reliability diagram and accuracy per category."""
    bins, categories = results.get("reliability"), results.get("categories")
    if not bins and not categories:
        return None
    figure = Figure(figsize=(9, 3.6))
    left, right = figure.subplots(1, 2)
    if bins:
        confidence = [b["confidence"] for b in bins]
        accuracy = [b["accuracy"] for b in bins]
        left.plot([0.5, 1], [0.5, 1], color="grey", linestyle=":", label="perfect")
        left.plot(confidence, accuracy, marker="o", label="model")
        for c, a, b in zip(confidence, accuracy, bins, strict=True):
            left.annotate(
                str(b["pairs"]), (c, a), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        calibration = results.get("calibration") or {}
        title = f"Reliability (ECE {results.get('ece', float('nan')):.3f}"
        if "temperature" in calibration:
            title += (
                f", T {calibration['temperature']:.2f}, power {calibration.get('power', 1.0):.2f}"
            )
        left.set(xlabel="confidence", ylabel="accuracy", title=title + ")", xlim=(0.5, 1.0))
        left.legend(fontsize=8)
    if categories:
        names = list(categories)
        right.bar(names, [categories[n]["accuracy"] for n in names])
        right.axhline(0.5, color="grey", linestyle=":")
        right.set(ylim=(0, 1), title="Accuracy per category")
        right.tick_params(axis="x", labelsize=8)
    return _png(figure)


def offset_sweep(results: dict[str, Any]) -> bytes | None:
    """lvm ``eval.json``: gate A's cosine by offset."""
    sweep = (results.get("A_offset_sweep") or {}).get("cos_by_offset")
    if not sweep:
        return None
    pairs = [(int(k), v) for k, v in sweep.items() if v is not None]
    figure = Figure(figsize=(6, 3.0))
    ax = figure.subplots()
    ax.bar([k for k, _ in pairs], [v for _, v in pairs])
    ax.set(xlabel="offset", ylabel="cos(pred, sentence at offset)", title="Gate A: offset sweep")
    return _png(figure)
