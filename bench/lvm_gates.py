"""Next-vector prediction on real documents: the trivial predictors and the learned ones,
the same gates on the same windows, two seeds, and a learning curve.

    python bench/lvm_gates.py --data-dir ../shared/data [--seeds 0 1] [--write]

Predictors: copy the last context vector, the mean of the context, ridge regression on
the concatenated context (:mod:`termwise.recipes.lvm.baselines`, the rows ``lvm eval``
prints), and the transformer trained three ways: MSE + the auto-scaled directional margin
(the default up to session 11), MSE only, and MSE + InfoNCE (the default now). The
learning curve trains the default config on 25 / 50 / 100 % of the training documents.
Every gate and the retreat rule (``dir.retreat``) judge every row the same way.
"""

from __future__ import annotations

import argparse
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
from termwise.recipes.lvm.config import LvmConfig, default_config
from termwise.recipes.lvm.data import Corpus, Windows, load_corpus, make_windows
from termwise.recipes.lvm.gates import baseline_rows, offset_sweep, run_gates
from termwise.recipes.lvm.recipe import training_documents
from termwise.trainer.recipe import run_recipe

MARK = "<!-- lvm_gates -->"
OLD_DEFAULT = {"directional": True, "contrastive": {"weight": 0.0}}
ARMS: dict[str, dict[str, Any]] = {
    "transformer, MSE + dir (old default)": {"objective": OLD_DEFAULT, "best_metric": "margin"},
    "transformer, MSE only": {
        "objective": {"directional": False, "contrastive": {"weight": 0.0}},
        "best_metric": "margin",
    },
    "transformer, MSE + InfoNCE (default)": {},
}
FRACTIONS = (0.25, 0.5, 1.0)


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


def curve_table(curve: dict[float, list[dict[str, Any]]], windows: dict[float, int]) -> list[str]:
    lines = [
        "| training documents | windows | R@1 | R@5 | MRR | cos next | margin(+1) |",
        "|---|---|---|---|---|---|---|",
    ]
    for fraction, rows in curve.items():

        def mean(key: str, rows: list[dict[str, Any]] = rows) -> float:
            return statistics.mean(r[key] for r in rows)

        lines.append(
            f"| {fraction:.0%} | {windows[fraction]} | {mean('r_at_1'):.4f} | "
            f"{mean('r_at_5'):.4f} | {mean('mrr'):.4f} | {mean('cos_next'):.3f} | "
            f"{mean('margin'):+.4f} |"
        )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--output", type=Path, default=Path("runs/bench_lvm"))
    parser.add_argument("--write", action="store_true", help="update docs/lvm.md")
    args = parser.parse_args()
    console = Console()
    base = default_config(args.data_dir)
    base = base.model_copy(
        update={
            "data": base.data.model_copy(update={"cache_dir": args.output / "data"}),
            "trainer": base.trainer.model_copy(update={"tensorboard": False}),
        }
    )
    started = time.perf_counter()
    corpus = load_corpus(base.data, console)
    embed_minutes = (time.perf_counter() - started) / 60
    cut = (base.data.context, base.data.offset)
    train_w = make_windows(corpus, corpus.documents("train"), *cut)
    val_w = make_windows(corpus, corpus.documents("val"), *cut)
    ood_w = make_windows(corpus, corpus.documents("ood"), *cut)
    rows: dict[str, dict[str, Any]] = {}
    predictors = trivial_predictors(Ridge.fit(corpus, train_w))
    trivial = baseline_rows(predictors, corpus, val_w)
    for name, predict in predictors.items():
        rows[name] = summary(
            run_gates(predict, corpus, val_w, ood_w, base.gates, baselines=trivial)
        )
    curve: dict[float, list[dict[str, Any]]] = {f: [] for f in FRACTIONS}
    windows: dict[float, int] = {}
    for arm, change in ARMS.items():
        for seed in args.seeds:
            config = merged(base, {**change, "trainer": {"seed": seed}})
            run = args.output / f"{len(rows)}-s{seed}"
            row = summary(trained(config, run, console))
            row["minutes"] = minutes(run)
            row["warnings"] = warnings(run)
            rows[f"{arm}, seed {seed}"] = row
            if not change:
                curve[1.0].append(row)
    for fraction in FRACTIONS[:-1]:
        for seed in args.seeds:
            config = merged(base, {"data": {"train_fraction": fraction}, "trainer": {"seed": seed}})
            run = args.output / f"curve-{fraction}-s{seed}"
            curve[fraction].append(summary(trained(config, run, console)))
    for fraction in FRACTIONS:
        subset = merged(base, {"data": {"train_fraction": fraction}})
        documents = training_documents(corpus, subset.data.train_fraction)
        windows[fraction] = len(make_windows(corpus, documents, *cut))
    (args.output / "results.json").write_bytes(
        orjson.dumps(
            {"rows": rows, "curve": {str(k): v for k, v in curve.items()}},
            option=orjson.OPT_INDENT_2,
        )
    )
    default = base.objective.contrastive
    lines = [
        "## Next-vector prediction: trivial and learned predictors, one set of gates "
        "(`termwise lvm`)",
        "",
        f"`python bench/lvm_gates.py --data-dir {args.data_dir} --seeds "
        f"{' '.join(map(str, args.seeds))}{' --write' if args.write else ''}`: wikitext-2 "
        "documents of ../shared/data/sequences (all-MiniLM-L6-v2 sentence vectors), split by "
        f"document; OOD = Brown news and learned passages. Context {base.data.context}, offset "
        f"{base.data.offset}; {len(train_w)} training, {len(val_w)} val, {len(ood_w)} OOD "
        f"windows; retrieval pool: all {len(val_w)} val targets (the window's own context "
        f"sentences among them). Embedding took {embed_minutes:.1f} min (0 when cached); "
        "minutes per run are training plus every gate (2 CPU cores, other runs beside some). "
        "The default: MSE + InfoNCE (weight "
        f"{default.weight:g}, temperature {default.temperature:g}, context sentences as hard "
        f"negatives {default.hard_negatives}), the best epoch by `{base.best_metric}`.",
        "",
        *table(rows),
        "",
        "Learning curve of the default config (mean of the seeds; val and pool unchanged):",
        "",
        *curve_table(curve, windows),
        "",
        "The ceiling of a prediction that only recombines its context: the true next vector "
        "projected onto the span of the window's own context vectors (an oracle: it knows the "
        "target):",
        "",
        *ceiling_table(corpus, {"train": train_w, "val": val_w}),
    ]
    publish(MARK, lines, args.write, DOCS / "lvm.md")


if __name__ == "__main__":
    main()
