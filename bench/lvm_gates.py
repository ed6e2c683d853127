"""Next-vector prediction on real documents: five predictors, five gates, one run.

    python bench/lvm_gates.py --data-dir ../shared/data [--epochs 6] [--write]

Predictors: copy the last context vector, the mean of the context, ridge regression on
the concatenated context, the transformer with MSE only, and the transformer with MSE +
the auto-scaled directional margin (the default config). The sentence embeddings (and
the direction diagnostic) are computed once and shared; every predictor is judged by the
same gate code on the same val and OOD windows.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import orjson
import torch
import torch.nn.functional as F
from rich.console import Console

from _doc import DOCS, publish
from termwise.recipes.lvm.config import LvmConfig, default_config
from termwise.recipes.lvm.data import load_corpus, make_windows
from termwise.recipes.lvm.diagnose import diagnose
from termwise.recipes.lvm.gates import run_gates
from termwise.recipes.lvm.recipe import train

MARK = "<!-- lvm_gates -->"


def ridge(corpus: Any, windows: Any, alpha: float = 1.0) -> Any:
    """Closed-form ridge from the concatenated context to the next vector."""
    x = corpus.vectors[windows.context].flatten(1).double()
    y = corpus.vectors[windows.target].double()
    x1 = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    eye = torch.eye(x1.shape[1], dtype=x.dtype) * alpha
    eye[-1, -1] = 0  # no penalty on the bias
    weights = torch.linalg.solve(x1.T @ x1 + eye, x1.T @ y)

    def predict(context: torch.Tensor) -> torch.Tensor:
        flat = torch.cat([context.flatten(1).double(), torch.ones(len(context), 1).double()], 1)
        return F.normalize((flat @ weights).float(), dim=-1)

    return predict


def summary(report: dict[str, Any]) -> dict[str, Any]:
    a, b = report["A_offset_sweep"], report["B_retrieval"]
    row: dict[str, Any] = {
        "margin": a["margin"],
        "cos_next": a["cos_next"],
        "cos_prev": a["cos_by_offset"]["0"],
        "r_at_1": b["r_at_1"],
        "r_at_5": b["r_at_5"],
        "mrr": b["mrr"],
        "doc_r_at_1": b["doc_r_at_1"],
        "rollout": report["D_rollout"],
        "passed": report["passed"],
    }
    row.update(report["C_ablations"])
    if "E_in_vs_ood" in report:
        row["ood_cos_next"] = report["E_in_vs_ood"]["ood"]["cos_next"]
        row["ood_gap"] = report["E_in_vs_ood"]["gap_cos_next"]
    return row


def table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| predictor | A margin(+1) | cos next | cos last ctx | B R@1 | R@5 | MRR | in-doc R@1 | "
        "C drop shuffled / last dropped / zeroed | D rollout 1..5 | E OOD cos next (gap) | "
        "gates passed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        rollout = " ".join("-" if v is None else f"{v:.2f}" for v in r["rollout"])
        passed = "".join(g for g, ok in r["passed"].items() if ok) or "none"
        lines.append(
            f"| {name} | {r['margin']:+.4f} | {r['cos_next']:.3f} | {r['cos_prev']:.3f} | "
            f"{r['r_at_1']:.3f} | {r['r_at_5']:.3f} | {r['mrr']:.3f} | {r['doc_r_at_1']:.3f} | "
            f"{r['drop_shuffled']:+.3f} / {r['drop_last_dropped']:+.3f} / {r['drop_zeroed']:+.3f}"
            f" | {rollout} | {r.get('ood_cos_next', float('nan')):.3f} "
            f"({r.get('ood_gap', float('nan')):.3f}) | {passed} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--output", type=Path, default=Path("runs/bench_lvm"))
    parser.add_argument("--write", action="store_true", help="update docs/results.md")
    args = parser.parse_args()
    console = Console()
    base = default_config(args.data_dir)
    base = base.model_copy(
        update={
            "epochs": args.epochs,
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
    docs = corpus.documents("train") + corpus.documents("val")
    direction = diagnose(corpus, docs, make_windows(corpus, docs, *cut), base.data.offset)
    rows: dict[str, dict[str, Any]] = {}
    simple = {
        "copy last": lambda c: c[:, -1],
        "mean of context": lambda c: F.normalize(c.mean(1), dim=-1),
        "ridge (concatenated context)": ridge(corpus, train_w),
    }
    for name, predict in simple.items():
        rows[name] = summary(run_gates(predict, corpus, val_w, ood_w, base.gates))
    minutes = {}
    for name, directional in (("transformer, MSE only", False), ("transformer, MSE + dir", True)):
        objective = base.objective.model_copy(update={"directional": directional})
        config = LvmConfig.model_validate(
            {**base.model_dump(), "objective": objective.model_dump()}
        )
        started = time.perf_counter()
        report = train(
            config, args.output / ("dir" if directional else "mse"), console, overwrite=True
        )
        minutes[name] = (time.perf_counter() - started) / 60
        rows[name] = summary(report)
    (args.output / "results.json").write_bytes(
        orjson.dumps({"rows": rows, "direction": direction}, option=orjson.OPT_INDENT_2)
    )
    raw = direction["raw_cos_by_offset"]
    lines = [
        "## Next-vector prediction: five predictors, five gates (`termwise lvm`)",
        "",
        f"`python bench/lvm_gates.py --data-dir {args.data_dir} --epochs {args.epochs}"
        f"{' --write' if args.write else ''}`: wikitext-2 documents of ../shared/data/sequences "
        "(all-MiniLM-L6-v2 sentence vectors), split by document; OOD = Brown news and learned "
        f"passages. Context {base.data.context}, offset {base.data.offset}; "
        f"{len(train_w)} training, {len(val_w)} val, {len(ood_w)} OOD windows. Embedding took "
        f"{embed_minutes:.1f} min; training the default config (MSE + dir) "
        f"{minutes.get('transformer, MSE + dir', float('nan')):.1f} min, MSE only "
        f"{minutes.get('transformer, MSE only', float('nan')):.1f} min (2 CPU cores).",
        "",
        *table(rows),
        "",
        "Direction diagnostic (`termwise lvm diagnose-data`) on the same documents: raw mean "
        "cos(s_t, s_{t+k}) for k = -3..3: "
        + ", ".join(f"{k}: {v:.4f}" for k, v in raw.items())
        + "; windows: "
        + "; ".join(f"{k} {v:.4f}" for k, v in direction["window_pairs"].items())
        + f". Verdict: {direction['verdict']}.",
    ]
    publish(MARK, lines, args.write, DOCS / "results.md")


if __name__ == "__main__":
    main()
