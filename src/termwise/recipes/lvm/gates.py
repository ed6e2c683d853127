"""The five gates of a next-vector predictor, for any ``predict(context) -> vectors``.

A, offset sweep: mean cos(pred, s_{t+k}) for k = -3..+3 around the last context sentence
s_t, and margin(+1) = cos(pred, s_{t+1}) - cos(pred, s_t); it passes when the sweep peaks
at the target (the next sentence is closer to the prediction than every context sentence)
and the margin reaches its threshold. B, retrieval: the rank of the true target among every
target of the split (and among its own document's): R@1/5/10, MRR; it passes when R@5
reaches its threshold and R@1, R@5 and MRR beat every trivial predictor's. C, ablations: the
drop in cos(pred, target) with the context order shuffled, the last context vector dropped,
the context zeroed. D, rollout: predictions fed back for H steps, mean cos to the true
continuation per step; it passes when step 1 reaches its threshold and the mean over the
steps beats every trivial predictor's rolled out the same way. E, in- vs
out-of-distribution: the key metrics on val and OOD and their differences, overall and per
third of the document.

The trivial predictors (:mod:`termwise.recipes.lvm.baselines`) run through the same code on
the same windows and pool (``baselines`` in the report), so a passing gate means the model
beat them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor

from termwise.recipes.lvm.config import GateThresholds
from termwise.recipes.lvm.data import Corpus, Windows

Predict = Callable[[Tensor], Tensor]
OFFSETS = range(-3, 4)


def predict_all(predict: Predict, contexts: Tensor, batch: int = 1024) -> Tensor:
    """``predict`` over ``contexts`` in chunks, on the model's device (the trainer may have
    put it on a GPU), returned on the CPU beside the corpus."""
    device = contexts.device
    if isinstance(predict, torch.nn.Module):
        device = next(predict.parameters(), contexts).device
    with torch.no_grad():
        return torch.cat([predict(chunk.to(device)).cpu() for chunk in contexts.split(batch)])


def target_offset(windows: Windows) -> int:
    """How far past the last context sentence the target lies (the config's ``offset``)."""
    return int(windows.target[0] - windows.context[0, -1])


def sweep_peak(sweep: dict[str, float | None]) -> int:
    """The offset whose sentence is closest to the prediction."""
    return int(max((k for k, v in sweep.items() if v is not None), key=lambda k: sweep[k] or 0))


def offset_sweep(pred: Tensor, corpus: Corpus, windows: Windows) -> dict[str, Any]:
    last = windows.context[:, -1]
    ends = corpus.offsets[windows.document + 1]
    starts = corpus.offsets[windows.document]
    sweep = {}
    for k in OFFSETS:
        index = last + k
        valid = (index >= starts) & (index < ends)
        cos = (pred[valid] * corpus.vectors[index[valid]]).sum(-1)
        sweep[str(k)] = float(cos.mean()) if valid.any() else None
    nxt = (pred * corpus.vectors[windows.target]).sum(-1)
    prv = (pred * corpus.vectors[windows.previous]).sum(-1)
    return {
        "cos_by_offset": sweep,
        "peak": sweep_peak(sweep),
        "target_offset": target_offset(windows),
        "margin": float((nxt - prv).mean()),
        "cos_next": float(nxt.mean()),
    }


def target_ranks(pred: Tensor, bank: Tensor, truth: Tensor) -> Tensor:
    """1-based rank of ``bank[truth[i]]`` among ``bank`` by cosine to ``pred[i]``; a tie
    ranks the true target last among its equals (a constant prediction ties with everything
    and must not rank first)."""
    ranks = []
    for rows in torch.arange(len(pred)).split(1024):
        scores = pred[rows] @ bank.T
        true = scores.gather(1, truth[rows, None])
        ranks.append((scores >= true).sum(1))
    return torch.cat(ranks)


def retrieval(pred: Tensor, corpus: Corpus, windows: Windows) -> dict[str, float]:
    bank = corpus.vectors[windows.target]
    ranks = target_ranks(pred, bank, torch.arange(len(windows)))
    within = torch.zeros(len(windows), dtype=torch.long)
    for document in windows.document.unique():
        rows = torch.nonzero(windows.document == document).flatten()
        within[rows] = target_ranks(pred[rows], bank[rows], torch.arange(len(rows)))
    out = {f"r_at_{k}": float((ranks <= k).float().mean()) for k in (1, 5, 10)}
    out["mrr"] = float((1.0 / ranks.float()).mean())
    out["doc_r_at_1"] = float((within <= 1).float().mean())
    out["doc_mrr"] = float((1.0 / within.float()).mean())
    return out


def ablations(predict: Predict, corpus: Corpus, windows: Windows, base: float) -> dict[str, float]:
    context = corpus.vectors[windows.context]
    generator = torch.Generator().manual_seed(0)
    order = torch.stack([torch.randperm(context.shape[1], generator=generator) for _ in context])
    variants = {
        "shuffled": context.gather(1, order[..., None].expand_as(context)),
        "last_dropped": torch.cat([torch.zeros_like(context[:, :1]), context[:, :-1]], 1),
        "zeroed": torch.zeros_like(context),
    }
    target = corpus.vectors[windows.target]
    out = {}
    for name, variant in variants.items():
        pred = predict_all(predict, variant)
        out[f"drop_{name}"] = base - float((pred * target).sum(-1).mean())
    return out


def rollout(
    predict: Predict, corpus: Corpus, windows: Windows, horizon: int = 5
) -> list[float | None]:
    context = corpus.vectors[windows.context].clone()
    ends = corpus.offsets[windows.document + 1]
    first_target = windows.context[:, -1] + 1
    per_step: list[float | None] = []
    for h in range(horizon):
        pred = predict_all(predict, context)
        index = first_target + h
        valid = index < ends
        cos = (pred[valid] * corpus.vectors[index[valid]]).sum(-1)
        per_step.append(float(cos.mean()) if valid.any() else None)
        context = torch.cat([context[:, 1:], pred[:, None]], 1)
    return per_step


def by_third(pred: Tensor, corpus: Corpus, windows: Windows) -> list[float | None]:
    """Mean cos(pred, next) for windows in the first, middle and last third of their document."""
    lengths = (corpus.offsets[windows.document + 1] - corpus.offsets[windows.document]).float()
    bins = (3 * windows.position.float() / lengths).clamp(max=2.999).long()
    cos = (pred * corpus.vectors[windows.target]).sum(-1)
    return [float(cos[bins == b].mean()) if (bins == b).any() else None for b in range(3)]


def run_gates(
    predict: Predict,
    corpus: Corpus,
    val: Windows,
    ood: Windows | None,
    thresholds: GateThresholds,
    full: bool = True,
    baselines: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every gate on ``val`` (E also on ``ood``), with pass/fail per gate. ``full=False``
    runs A and B only (the per-epoch check). ``baselines``: :func:`baseline_rows` of the
    same windows, which gates B and D must beat."""
    baselines = baselines or {}
    pred = predict_all(predict, corpus.vectors[val.context])
    report: dict[str, Any] = {"A_offset_sweep": offset_sweep(pred, corpus, val)}
    report["B_retrieval"] = retrieval(pred, corpus, val)
    report["pool"] = pool_description(val)
    a, b = report["A_offset_sweep"], report["B_retrieval"]
    passed = {
        "A": a["peak"] == a["target_offset"] and a["margin"] >= thresholds.margin,
        "B": b["r_at_5"] >= thresholds.r_at_5 and beats_retrieval(b, baselines),
    }
    if full:
        report["C_ablations"] = ablations(predict, corpus, val, a["cos_next"])
        report["D_rollout"] = rollout(predict, corpus, val)
        c, d = report["C_ablations"], report["D_rollout"]
        passed["C"] = min(c["drop_shuffled"], c["drop_zeroed"]) >= thresholds.ablation_drop
        passed["D"] = (
            d[0] is not None
            and d[0] >= thresholds.rollout_first
            and all(_mean(d) > _mean(row["rollout"]) for row in baselines.values())
        )
        if ood is not None and len(ood):
            report["E_in_vs_ood"] = in_vs_ood(predict, corpus, val, ood, pred)
            passed["E"] = report["E_in_vs_ood"]["gap_cos_next"] <= thresholds.ood_gap
    report["baselines"] = baselines
    report["passed"] = passed
    return report


RETRIEVAL_KEYS = ("r_at_1", "r_at_5", "mrr")


def beats_retrieval(model: dict[str, float], baselines: dict[str, dict[str, Any]]) -> bool:
    """R@1, R@5 and MRR all above every baseline's (no baselines: nothing to beat)."""
    return all(model[k] > row[k] for row in baselines.values() for k in RETRIEVAL_KEYS)


def _mean(values: list[float | None]) -> float:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else float("nan")


def pool_description(windows: Windows) -> str:
    return (
        f"{len(windows)} windows of {len(windows.document.unique())} documents; R@k and MRR "
        f"rank the true target among all {len(windows)} targets, in-document among its own "
        "document's"
    )


def baseline_rows(
    predictors: dict[str, Predict], corpus: Corpus, windows: Windows, full: bool = True
) -> dict[str, dict[str, Any]]:
    """The offset sweep, retrieval and (``full``: gate D's) rollout of each trivial predictor
    on ``windows``."""
    rows = {}
    for name, predict in predictors.items():
        pred = predict_all(predict, corpus.vectors[windows.context])
        rows[name] = {
            **offset_sweep(pred, corpus, windows),
            **retrieval(pred, corpus, windows),
            "rollout": rollout(predict, corpus, windows) if full else [],
        }
    return rows


def in_vs_ood(
    predict: Predict, corpus: Corpus, val: Windows, ood: Windows, pred_val: Tensor
) -> dict[str, Any]:
    pred_ood = predict_all(predict, corpus.vectors[ood.context])
    sides = {}
    for name, pred, windows in (("val", pred_val, val), ("ood", pred_ood, ood)):
        sweep = offset_sweep(pred, corpus, windows)
        sides[name] = {
            "cos_next": sweep["cos_next"],
            "margin": sweep["margin"],
            "r_at_5": retrieval(pred, corpus, windows)["r_at_5"],
            "by_third": by_third(pred, corpus, windows),
        }
    gaps = [
        None if v is None or o is None else abs(v - o)
        for v, o in zip(sides["val"]["by_third"], sides["ood"]["by_third"], strict=True)
    ]
    return {
        **sides,
        "gap_cos_next": abs(sides["val"]["cos_next"] - sides["ood"]["cos_next"]),
        "gap_margin": abs(sides["val"]["margin"] - sides["ood"]["margin"]),
        "gap_r_at_5": abs(sides["val"]["r_at_5"] - sides["ood"]["r_at_5"]),
        "gap_by_third": gaps,
    }


def print_gates(report: dict[str, Any], console: Console, title: str) -> None:
    table = Table(title=title)
    for column in ("gate", "key numbers", "result"):
        table.add_column(column)
    a, b = report["A_offset_sweep"], report["B_retrieval"]
    sweep = " ".join(f"{k}:{v:.3f}" for k, v in a["cos_by_offset"].items() if v is not None)
    rows = [
        (
            "A offset sweep",
            f"margin(+1) {a['margin']:+.4f}; peak at {a['peak']:+d} (target "
            f"{a['target_offset']:+d}); cos by offset {sweep}",
        ),
        (
            "B retrieval",
            f"R@1 {b['r_at_1']:.3f} R@5 {b['r_at_5']:.3f} R@10 {b['r_at_10']:.3f} "
            f"MRR {b['mrr']:.3f}; in-document R@1 {b['doc_r_at_1']:.3f}",
        ),
    ]
    if "C_ablations" in report:
        c = report["C_ablations"]
        rows.append(("C ablations", " ".join(f"{k} {v:+.4f}" for k, v in c.items())))
        d = report["D_rollout"]
        rows.append(("D rollout", " ".join("-" if v is None else f"{v:.3f}" for v in d)))
    if "E_in_vs_ood" in report:
        e = report["E_in_vs_ood"]
        rows.append(
            (
                "E in vs OOD",
                f"cos(next) val {e['val']['cos_next']:.3f} OOD "
                f"{e['ood']['cos_next']:.3f} (gap {e['gap_cos_next']:.3f}); R@5 gap "
                f"{e['gap_r_at_5']:.3f}",
            )
        )
    for name, numbers in rows:
        result = report["passed"].get(name[0])
        table.add_row(name, numbers, "-" if result is None else "pass" if result else "FAIL")
    console.print(table)
    if report.get("baselines"):
        print_comparison(report, console)


def print_comparison(report: dict[str, Any], console: Console) -> None:
    """The model beside the trivial predictors, on the same windows and pool."""
    table = Table(title="The model beside the trivial predictors (same windows)")
    columns = ("predictor", "margin(+1)", "peak", "cos(next)", "R@1", "R@5", "MRR")
    for column in (*columns, "in-doc R@1", "rollout mean"):
        table.add_column(column)
    model = {**report["A_offset_sweep"], **report["B_retrieval"]}
    model["rollout"] = report.get("D_rollout", [])
    for name, row in {"model": model, **report["baselines"]}.items():
        rollout_mean = _mean(row["rollout"]) if row["rollout"] else float("nan")
        table.add_row(
            name,
            f"{row['margin']:+.4f}",
            f"{row['peak']:+d}",
            f"{row['cos_next']:.3f}",
            *(f"{row[k]:.3f}" for k in (*RETRIEVAL_KEYS, "doc_r_at_1")),
            "-" if math.isnan(rollout_mean) else f"{rollout_mean:.3f}",
        )
    console.print(table)
    console.print(f"pool: {report['pool']}", markup=False)
