"""Free bits on real sentences: the arms side by side, same model, data and budget.

    python bench/vae_free_bits.py --data-dir ../shared/data [--epochs 3] [--write]

Arms: (1) an autoregressive LM without a latent (the anchor), (2) a VAE with KL weight 1
throughout and no free bits, (2b) the same without the teacher term, (3) KL annealing
only, (4) free bits 0.1 with mean-over-dims KL (the seed's setting), (5) free bits 0.02
(the seed's fix), (6) free_bits: auto. Each arm reports val IW-NLL and perplexity, KL,
MI, active units, penalty reduction, free fraction, teacher share, and the findings raised
with the step each first fired at (as a share of the run). The data (and the MiniLM
teacher targets) are built once and shared.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

import termwise.recipes.vae.recipe as vae_recipe
from _doc import DOCS, publish
from termwise.health import read_findings
from termwise.recipes.vae.config import VaeConfig, default_config
from termwise.trainer.recipe import run_recipe

MARK = "<!-- vae_free_bits -->"
MARK_CLASSIFY = "<!-- vae_classify -->"


def arms(epochs: int) -> dict[str, dict[str, Any]]:
    anneal = [
        {"name": "anneal", "epochs": 1, "kl_weight": {"start": 0.0, "end": 1.0}},
        {"name": "main", "epochs": epochs - 1},
    ]
    constant = [{"name": "main", "epochs": epochs}]
    return {
        "1 LM (no latent)": {
            "model": {"use_latent": False},
            "teacher": {"enabled": False},
            "stages": constant,
        },
        "2 KL weight 1, no free bits": {"kl": {"free_bits": 0.0}, "stages": constant},
        "2b KL weight 1, no free bits, no teacher": {
            "kl": {"free_bits": 0.0},
            "teacher": {"enabled": False},
            "stages": constant,
        },
        "3 KL annealing only": {"kl": {"free_bits": 0.0}, "stages": anneal},
        "4 free bits 0.1 (mean dims)": {"kl": {"free_bits": 0.1}, "stages": anneal},
        "5 free bits 0.02": {"kl": {"free_bits": 0.02}, "stages": anneal},
        "6 free bits auto": {"kl": {"free_bits": "auto"}, "stages": anneal},
    }


def classify_arms(epochs: int) -> dict[str, dict[str, Any]]:
    """The second task: text -> latent tokens -> corpus label, TF-IDF soft labels as the
    teacher."""
    anneal = [
        {"name": "anneal", "epochs": 1, "kl_weight": {"start": 0.0, "end": 1.0}},
        {"name": "main", "epochs": epochs - 1},
    ]
    return {
        "C1 no free bits, teacher": {"kl": {"free_bits": 0.0}, "stages": anneal},
        "C2 free bits auto, teacher": {"kl": {"free_bits": "auto"}, "stages": anneal},
        "C3 free bits auto, no teacher": {
            "kl": {"free_bits": "auto"},
            "teacher": {"enabled": False},
            "stages": anneal,
        },
    }


def run_arm(base: VaeConfig, name: str, changes: dict[str, Any], output: Path) -> dict[str, Any]:
    settings = base.model_dump(mode="json")
    for key, value in changes.items():
        settings[key] = {**settings[key], **value} if isinstance(value, dict) else value
    config = VaeConfig.model_validate(settings)
    started = time.perf_counter()
    results = run_recipe(vae_recipe, config, output, Console(), overwrite=True)
    results["minutes"] = (time.perf_counter() - started) / 60
    steps = max(int(r.get("step", 0)) for r in _metrics(output)) or 1
    health = output / "health.jsonl"
    findings, _ = read_findings(health) if health.exists() else ([], 0)
    first: dict[str, int] = {}
    for finding in findings:
        if finding.severity != "info":
            first.setdefault(finding.code, finding.step)
    results["findings"] = {code: step / steps for code, step in sorted(first.items())}
    results["epoch_metrics"] = _metrics(output)
    return results


def _metrics(output: Path) -> list[dict[str, Any]]:
    path = output / "metrics.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def _formatter(row: dict[str, Any]) -> Any:
    def cell(key: str, fmt: str = ".3f") -> str:
        value = row.get(key)
        return "-" if value is None else format(value, fmt)

    return cell


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| arm | val IW-NLL/token | perplexity | KL (nats) | MI | active units | "
        "penalty reduction | free fraction | teacher share | findings (first step / run) | min |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        cell = _formatter(r)
        found = ", ".join(f"{c} @{100 * s:.0f}%" for c, s in r["findings"].items()) or "none"
        lines.append(
            f"| {name} | {cell('val_iw_nll')} | {cell('val_perplexity', '.1f')} | "
            f"{cell('val_kl', '.2f')} | {cell('val_mi')} | {cell('val_active_units', '.0f')} | "
            f"{cell('val_penalty_reduction', '.2f')} | {cell('val_free_fraction', '.2f')} | "
            f"{cell('val_teacher_share', '.3f')} | {found} | {r['minutes']:.1f} |"
        )
    return lines


def classify_table(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| arm | val exact | test exact | val loss | KL (nats) | MI | active units | "
        "penalty reduction | teacher share | findings (first step / run) | min |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        cell = _formatter(r)
        found = ", ".join(f"{c} @{100 * s:.0f}%" for c, s in r["findings"].items()) or "none"
        lines.append(
            f"| {name} | {cell('val_exact')} | {cell('test_exact')} | {cell('val_loss')} | "
            f"{cell('val_kl', '.2f')} | {cell('val_mi')} | {cell('val_active_units', '.0f')} | "
            f"{cell('val_penalty_reduction', '.2f')} | {cell('val_teacher_share', '.3f')} | "
            f"{found} | {r['minutes']:.1f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--output", type=Path, default=Path("runs/bench_vae"))
    parser.add_argument("--arms", default="", help="comma-separated arm numbers (default all)")
    parser.add_argument("--task", choices=["reconstruct", "classify"], default="reconstruct")
    parser.add_argument("--write", action="store_true", help="update docs/vae.md")
    parser.add_argument(
        "--merge", type=Path, nargs="*", default=[], help="results_*.json of earlier runs to add"
    )
    args = parser.parse_args()
    base = default_config(args.data_dir, args.task)
    base = base.model_copy(
        update={
            "data": base.data.model_copy(update={"cache_dir": args.output / "data"}),
            "early_stopping": base.early_stopping.model_copy(update={"patience": 100}),
            "trainer": base.trainer.model_copy(update={"tensorboard": False}),
        }
    )
    chosen = {n for n in args.arms.split(",") if n}
    results: dict[str, dict[str, Any]] = {}
    for earlier in args.merge:
        results.update(orjson.loads(earlier.read_bytes()))
    plan = arms(args.epochs) if args.task == "reconstruct" else classify_arms(args.epochs)
    for name, changes in plan.items():
        if chosen and name.split()[0] not in chosen:
            continue
        results[name] = run_arm(base, name, changes, args.output / name.split()[0])
        (args.output / f"results_{args.task}.json").write_bytes(
            orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
        )
    results = dict(sorted(results.items()))
    if args.task == "classify":
        lines = [
            "### Second task: text -> latent tokens -> corpus label",
            "",
            f"`python bench/vae_free_bits.py --data-dir {args.data_dir} --task classify "
            f"--epochs {args.epochs}`: rows of five corpora (news, learned, reviews, glossary, "
            "chat; 64 tokens) split by document, the label is the corpus, the teacher is "
            "TF-IDF + logistic regression's class probabilities (trained on the training split).",
            "",
            *classify_table(results),
        ]
        publish(MARK_CLASSIFY, lines, args.write, DOCS / "vae.md")
        return
    lines = [
        "## Free bits on real sentences (`termwise vae`)",
        "",
        f"`python bench/vae_free_bits.py --data-dir {args.data_dir} --epochs {args.epochs}"
        f"{' --write' if args.write else ''}`: wikitext-2 sentences of ../shared/data/sequences "
        "split by document, GRU encoder/decoder, 32-d latent, MiniLM teacher (weight 10), "
        f"{args.epochs} epochs per arm, 2 CPU cores. NLL in nats per token (val, "
        "importance-weighted with 10 samples; exact for the LM).",
        "",
        *table(results),
    ]
    publish(MARK, lines, args.write, DOCS / "vae.md")


if __name__ == "__main__":
    main()
