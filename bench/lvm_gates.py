"""Next-vector prediction on real documents: the trivial predictors and the learned ones,
the same gates on the same windows, two seeds, and a learning curve, on each document set.

    python bench/lvm_gates.py --data-dir ../shared/data [--documents wikitext prose-mix]
        [--seeds 0 1] [--curve-seeds 0] [--arms default residual larger]
        [--curve default residual] [--write]

Document sets (``lvm gen-config --documents``): ``wikitext`` (the sequences articles, Brown
as OOD) and ``prose-mix`` (Brown, movie reviews and C4 rebuilt from their passages, the
WikiText articles as OOD). Predictors: copy the last context vector, the mean of the
context, ridge regression on the concatenated context (:mod:`termwise.recipes.lvm.baselines`,
the rows ``lvm eval`` prints), the default transformer (MSE + InfoNCE), the same predicting a
correction to the last context vector (``model.residual``), and one of twice the width and
layers. The learning curve trains an arm on nested
subsets of the training documents (fixed, the same for every seed) up to all of them, and
fits MRR and R@5 against log2(documents). Every gate judges every row the same way; a run
already finished with the same config is read back, not retrained.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor

import termwise.recipes.lvm.recipe as lvm_recipe
from _doc import DOCS, publish
from termwise.config import load_yaml_config
from termwise.health.findings import read_findings
from termwise.recipes.lvm.baselines import Ridge, trivial_predictors
from termwise.recipes.lvm.config import DOCUMENT_SETS, LvmConfig, default_config
from termwise.recipes.lvm.data import Corpus, Windows, load_corpus, make_windows
from termwise.recipes.lvm.gates import (
    baseline_rows,
    offset_sweep,
    predict_all,
    retrieval,
    run_gates,
    target_ranks,
)
from termwise.recipes.lvm.model import load_lvm
from termwise.recipes.lvm.recipe import training_documents
from termwise.trainer.recipe import MODEL_DIR, run_recipe

MARK = "<!-- lvm_gates -->"
SPLITS = ("train", "val", "ood")
FIT_POINTS = 4
# The learning curve's training documents (source documents), the last point all of them.
CURVE: dict[str, tuple[int, ...]] = {"wikitext": (20, 39), "prose-mix": (78, 156, 312, 624, 1248)}
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("default", {}),
    "larger": (
        "larger (width 512, 4 layers, 8 heads)",
        {"model": {"width": 512, "layers": 4, "heads": 8}},
    ),
    "residual": (
        "residual (a correction to the last context vector)",
        {"model": {"residual": True}},
    ),
}
DESCRIBE = {
    "wikitext": "wikitext-2 articles of ../shared/data/sequences; OOD = Brown news and learned "
    "documents (rebuilt from their passages)",
    "prose-mix": "documents rebuilt from the Brown, movie-review and C4 passages of "
    "../shared/data/corpora (`lvm gen-config --documents prose-mix`); OOD = WikiText "
    "articles of ../shared/data/sequences, in neither mix",
}


def merged(base: LvmConfig, change: dict[str, Any]) -> LvmConfig:
    data = base.model_dump()
    for key, value in change.items():
        if isinstance(value, dict):
            for inner, setting in value.items():
                if isinstance(setting, dict):
                    data[key][inner].update(setting)
                else:
                    data[key][inner] = setting
        else:
            data[key] = value
    return LvmConfig.model_validate(data)


def summary(report: dict[str, Any]) -> dict[str, Any]:
    a, b = report["A_offset_sweep"], report["B_retrieval"]
    row: dict[str, Any] = {
        "margin": a["margin"],
        "peak": a["peak"],
        "cos_next": a["cos_next"],
        "cos_last": a["cos_by_offset"]["0"],
        "r_at_1": b["r_at_1"],
        "r_at_5": b["r_at_5"],
        "mrr": b["mrr"],
        "doc_r_at_1": b["doc_r_at_1"],
        "rollout": report["D_rollout"],
        "passed": report["passed"],
    }
    if "E_in_vs_ood" in report:
        row["ood_cos_next"] = report["E_in_vs_ood"]["ood"]["cos_next"]
        row["ood_gap"] = report["E_in_vs_ood"]["gap_cos_next"]
    return row


def warnings(run: Path) -> list[str]:
    if not (run / "health.jsonl").is_file():  # a run without findings writes none
        return []
    found, _ = read_findings(run / "health.jsonl")
    return sorted({f.code for f in found if f.severity != "info"})


def trained(config: LvmConfig, run: Path, console: Console) -> dict[str, Any]:
    """Train ``config`` into ``run``, or read the run already there when it was trained with
    this very config (a bench stopped half way picks up where it was)."""
    done = run / "eval.json"
    if done.is_file() and (run / "config.yaml").is_file():
        kept = load_yaml_config(run / "config.yaml", LvmConfig)
        if kept.model_dump() == config.model_dump():
            return dict(orjson.loads(done.read_bytes()))
    return run_recipe(lvm_recipe, config, run, console, overwrite=True)


def minutes(run: Path) -> float:
    """Training and every gate: from the run's config (written first) to its gates (last)."""
    return ((run / "eval.json").stat().st_mtime - (run / "config.yaml").stat().st_mtime) / 60


def table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| predictor | A margin(+1) | sweep peak | cos next | cos last ctx | B R@1 | R@5 | MRR | "
        "in-doc R@1 | D rollout 1..5 | E OOD cos next (gap) | gates passed | warnings | min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        rollout = " ".join("-" if v is None else f"{v:.2f}" for v in r["rollout"])
        passed = "".join(g for g, ok in r["passed"].items() if ok) or "none"
        lines.append(
            f"| {name} | {r['margin']:+.4f} | {r['peak']:+d} | {r['cos_next']:.3f} | "
            f"{r['cos_last']:.3f} | {r['r_at_1']:.4f} | {r['r_at_5']:.4f} | {r['mrr']:.4f} | "
            f"{r['doc_r_at_1']:.3f} | {rollout} | {r.get('ood_cos_next', float('nan')):.3f} "
            f"({r.get('ood_gap', float('nan')):.3f}) | {passed} | "
            f"{', '.join(r.get('warnings', [])) or '-'} | {r.get('minutes', 0):.1f} |"
        )
    return lines


def mean_of(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.mean(r[key] for r in rows)


def log_fit(curve: dict[int, list[dict[str, Any]]], key: str) -> tuple[float, float]:
    """Least squares ``key = a + b log2(documents)`` over the curve's points."""
    x = torch.tensor([math.log2(n) for n in curve], dtype=torch.float64)
    y = torch.tensor([mean_of(rows, key) for rows in curve.values()], dtype=torch.float64)
    slope = float(((x - x.mean()) * (y - y.mean())).sum() / (x - x.mean()).square().sum())
    return float(y.mean()) - slope * float(x.mean()), slope


def documents_needed(fit: tuple[float, float], target: float) -> float | None:
    """Where the fitted line reaches ``target`` (None when it does not rise)."""
    intercept, slope = fit
    return 2 ** ((target - intercept) / slope) if slope > 0 else None


def curve_table(
    curve: dict[int, list[dict[str, Any]]], windows: dict[int, int], trivial: dict[str, Any]
) -> list[str]:
    lines = [
        "| training documents | windows | R@1 | R@5 | MRR | cos next | margin(+1) | peak | "
        "train MRR (pool) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for documents, rows in curve.items():
        peaks = "/".join(f"{r['peak']:+d}" for r in rows)
        lines.append(
            f"| {documents} | {windows[documents]} | {mean_of(rows, 'r_at_1'):.4f} | "
            f"{mean_of(rows, 'r_at_5'):.4f} | {mean_of(rows, 'mrr'):.4f} | "
            f"{mean_of(rows, 'cos_next'):.3f} | {mean_of(rows, 'margin'):+.4f} | {peaks} | "
            f"{mean_of(rows, 'train_mrr'):.4f} ({rows[0]['train_pool']}) |"
        )
    if len(curve) < 3:
        return lines
    # The early doublings gain most: a line through the last points is the honest forecast.
    top = dict(list(curve.items())[-FIT_POINTS:])
    lines += ["", f"Fitted over the last {len(top)} points ({', '.join(map(str, top))} documents):"]
    for key, label in (("mrr", "MRR"), ("r_at_5", "R@5")):
        fit = log_fit(top, key)
        best = max(trivial, key=lambda name: trivial[name][key])
        needed = documents_needed(fit, trivial[best][key])
        reach = "never (the fit does not rise)" if needed is None else f"{needed:,.0f} documents"
        lines.append(
            f"- {label} = {fit[0]:.4f} + {fit[1]:.4f} log2(documents): reaches {best}'s "
            f"{trivial[best][key]:.4f} at {reach}."
        )
    return lines


def source_of(name: str) -> str:
    """``brown_news.jsonl:brown-ca01`` -> ``brown``; ``reviews.jsonl:...`` -> ``reviews``."""
    return name.split(":", 1)[0].removesuffix(".jsonl").split("_", 1)[0]


def by_source(predictions: dict[str, Tensor], corpus: Corpus, windows: Windows) -> list[str]:
    """MRR and R@5 per source of the query windows, the pool unchanged (every val target):
    where copying wins and where the model does."""
    bank = corpus.vectors[windows.target]
    truth = torch.arange(len(windows))
    ranks = {name: target_ranks(pred, bank, truth).float() for name, pred in predictions.items()}
    sources = [source_of(corpus.names[int(d)]) for d in windows.document]
    names = list(predictions)
    lines = [
        "| source | windows | " + " | ".join(f"{n} MRR / R@5" for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for source in sorted(set(sources)):
        rows = torch.tensor([s == source for s in sources])
        mrr = [float((1 / ranks[n][rows]).mean()) for n in names]
        r_at_5 = [float((ranks[n][rows] <= 5).float().mean()) for n in names]
        cells = [f"{m:.4f} / {r:.4f}" for m, r in zip(mrr, r_at_5, strict=True)]
        lines.append(f"| {source} | {int(rows.sum())} | " + " | ".join(cells) + " |")
    return lines


def in_span_oracle(corpus: Corpus, windows: Windows) -> Tensor:
    """The true target projected onto the span of its own context vectors (it knows the
    answer): the closest any prediction that only recombines the context can point."""
    context, target = corpus.vectors[windows.context], corpus.vectors[windows.target]
    basis, _ = torch.linalg.qr(context.transpose(1, 2))  # [W, d, C] orthonormal columns
    coefficients = torch.einsum("wdc,wd->wc", basis, target)
    return F.normalize(torch.einsum("wdc,wc->wd", basis, coefficients), dim=-1)


def ceiling_table(corpus: Corpus, splits: dict[str, Windows]) -> list[str]:
    lines = [
        "| windows | sweep peak | margin(+1) | cos by offset -3 .. +3 |",
        "|---|---|---|---|",
    ]
    for name, windows in splits.items():
        sweep = offset_sweep(in_span_oracle(corpus, windows), corpus, windows)
        values = " ".join(f"{v:.3f}" for v in sweep["cos_by_offset"].values() if v is not None)
        lines.append(f"| {name} | {sweep['peak']:+d} | {sweep['margin']:+.4f} | {values} |")
    return lines


def train_mrr(run: Path, corpus: Corpus, windows: Windows, size: int) -> float:
    """The saved model's MRR on ``size`` of its own training windows, their targets the
    pool: beside the val MRR on a pool of as many, the gap between fit and generalisation."""
    model, _ = load_lvm(run / MODEL_DIR)
    rows = torch.randperm(len(windows), generator=torch.Generator().manual_seed(0))[:size]
    subset = windows.subset(rows.sort().values)
    return retrieval(predict_all(model.eval(), corpus.vectors[subset.context]), corpus, subset)[
        "mrr"
    ]


def measured(
    config: LvmConfig, run: Path, corpus: Corpus, val_size: int, console: Console
) -> dict[str, Any]:
    row = summary(trained(config, run, console))
    row["minutes"], row["warnings"] = minutes(run), warnings(run)
    cut = (config.data.context, config.data.offset)
    windows = make_windows(corpus, training_documents(corpus, config.data.train_fraction), *cut)
    row["train_mrr"], row["train_pool"] = (
        train_mrr(run, corpus, windows, val_size),
        min(len(windows), val_size),
    )
    return row


def configured(args: argparse.Namespace, documents: str) -> LvmConfig:
    base = default_config(args.data_dir, documents)
    return base.model_copy(
        update={
            "data": base.data.model_copy(update={"cache_dir": args.output / documents / "data"}),
            "trainer": base.trainer.model_copy(update={"tensorboard": False}),
        }
    )


def bench(args: argparse.Namespace, documents: str, console: Console) -> list[str]:
    """Trivial predictors, the arms on every seed, and the default's learning curve."""
    base = configured(args, documents)
    started = time.perf_counter()
    corpus = load_corpus(base.data, console)
    embed_minutes = (time.perf_counter() - started) / 60
    cut = (base.data.context, base.data.offset)
    train_w = make_windows(corpus, corpus.documents("train"), *cut)
    val_w = make_windows(corpus, corpus.documents("val"), *cut)
    ood_w = make_windows(corpus, corpus.documents("ood"), *cut)
    groups = {split: {corpus.group(i) for i in corpus.documents(split)} for split in SPLITS}
    rows: dict[str, dict[str, Any]] = {}
    predictors = trivial_predictors(Ridge.fit(corpus, train_w))
    trivial = baseline_rows(predictors, corpus, val_w)
    for name, predict in predictors.items():
        rows[name] = summary(
            run_gates(predict, corpus, val_w, ood_w, base.gates, baselines=trivial)
        )
    trivial_rows = dict(rows)
    curves: dict[str, dict[int, list[dict[str, Any]]]] = {}
    windows: dict[int, int] = {}
    total = len(groups["train"])
    for arm in args.arms:
        name, change = ARMS[arm]
        counts = [c for c in CURVE[documents] if c < total] if arm in args.curve else []
        curve: dict[int, list[dict[str, Any]]] = {}
        for count in (*counts, total):
            fraction = 1.0 if count == total else (count - 0.5) / total  # ceil: count
            windows[count] = len(make_windows(corpus, training_documents(corpus, fraction), *cut))
            for seed in args.seeds if count == total else args.curve_seeds:
                change_here = {**change, "data": {"train_fraction": fraction}}
                config = merged(base, {**change_here, "trainer": {"seed": seed}})
                run = args.output / documents / f"{arm}-{count}-s{seed}"
                row = measured(config, run, corpus, len(val_w), console)
                if count == total:
                    rows[f"transformer, {name}, seed {seed}"] = row
                if seed in args.curve_seeds and arm in args.curve:
                    curve.setdefault(count, []).append(row)
        if curve:
            curves[name] = curve
    saved = {name: {str(n): v for n, v in c.items()} for name, c in curves.items()}
    results = {"rows": rows, "curves": saved}
    (args.output / documents / "results.json").write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2)
    )
    default = base.objective.contrastive
    sizes = "; ".join(
        f"{split} {len(groups[split])} documents ({len(corpus.documents(split))} parts), "
        f"{len(w)} windows"
        for split, w in zip(SPLITS, (train_w, val_w, ood_w), strict=True)
    )
    seeds = " ".join(map(str, args.seeds))
    lines = [
        f"### {documents}",
        "",
        f"`python bench/lvm_gates.py --data-dir {args.data_dir} --documents {documents} "
        f"--seeds {seeds} --curve-seeds {' '.join(map(str, args.curve_seeds))} --arms "
        f"{' '.join(args.arms)} --curve {' '.join(args.curve)}"
        f"{' --write' if args.write else ''}`: {DESCRIBE[documents]}; all-MiniLM-L6-v2 "
        f"sentence vectors, split by source document. Context {base.data.context}, offset "
        f"{base.data.offset}; {sizes}. Retrieval pool: the {len(val_w)} val targets of this "
        f"set (the window's own context sentences among them). Embedding took "
        f"{embed_minutes:.1f} min (0 when cached); minutes per run are training plus every "
        "gate (2 CPU cores). The default: MSE + InfoNCE (weight "
        f"{default.weight:g}, temperature {default.temperature:g}), {base.epochs} epochs, "
        f"the best epoch by `{base.best_metric}`.",
        "",
        *table(rows),
    ]
    for name, curve in curves.items():
        lines += [
            "",
            f"Learning curve of the {name} config (val and pool unchanged; seeds "
            f"{' '.join(map(str, args.curve_seeds))}; peaks per seed):",
            "",
            *curve_table(curve, windows, trivial_rows),
        ]
    contexts = corpus.vectors[val_w.context]
    predictions = {"copy-last": predict_all(predictors["copy-last"], contexts)}
    for arm in args.arms:
        model, _ = load_lvm(args.output / documents / f"{arm}-{total}-s{args.seeds[0]}" / MODEL_DIR)
        predictions[f"{arm}, seed {args.seeds[0]}"] = predict_all(model.eval(), contexts)
    lines += [
        "",
        "By source of the query window (the pool unchanged):",
        "",
        *by_source(predictions, corpus, val_w),
    ]
    lines += [
        "",
        "The ceiling of a prediction that only recombines its context: the true next vector "
        "projected onto the span of the window's own context vectors (an oracle: it knows the "
        "target):",
        "",
        *ceiling_table(corpus, {"train": train_w, "val": val_w}),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--documents", nargs="*", choices=DOCUMENT_SETS, default=DOCUMENT_SETS)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--curve-seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--arms", nargs="*", choices=ARMS, default=list(ARMS))
    parser.add_argument("--curve", nargs="*", choices=ARMS, default=["default", "residual"])
    parser.add_argument("--output", type=Path, default=Path("runs/bench_lvm"))
    parser.add_argument("--write", action="store_true", help="update docs/lvm.md")
    args = parser.parse_args()
    console = Console()
    for documents in args.documents:
        mark = f"{MARK[:-4]} {documents} -->"
        publish(mark, bench(args, documents, console), args.write, DOCS / "lvm.md")


if __name__ == "__main__":
    main()
