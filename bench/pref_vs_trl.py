"""termwise pref (bt, gpm, bayes_gpm) against TRL's RewardTrainer, side by side in one run.

Every model uses the same backbone (default all-MiniLM-L6-v2), the same LoRA settings
(r 16, alpha 32, dropout 0.05 on query/key/value), the same token ids (termwise's encoding of
(prompt, response), handed to TRL pre-tokenised), the same train split, steps, batch size,
learning rate (constant, no warm-up), gradient clipping (1.0) and seed, in fp32 on CPU.
Reports dev accuracy per category (ties wrong), overall, ECE, NLL and the wall time per
step (median of step-to-step intervals after 5 warm-up steps, loop overhead included).
"Calibrated" columns: termwise's calibration (temperature and power) of each half of dev
fitted on the other half (2 folds stratified by category), so no pair is judged by a fit
made on it; the mean over 8 random splits (one split's ECE moves by about 0.01); the same
for every model, TRL included. Every model's dev scores are saved in ``results.json``.

    .venv/bin/python bench/pref_vs_trl.py [--data-dir ../shared/data/preferences]
        [--max-steps 400] [--batch-size 8] [--learning-rate 2e-4] [--write]
    .venv/bin/python bench/pref_vs_trl.py --rescore runs/bench_pref [same flags]
        # no training: score dev again with the termwise models an earlier run saved

Needs the bench extra: ``pip install -e '.[bench]'`` (``make bench-pref`` does it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from _doc import DOCS, publish
from termwise.data.batching import length_batches
from termwise.models.backbone import load_tokenizer, resolve_backbone
from termwise.recipes.pref.calibration import (
    POWER_PRIOR_SIGMA,
    RAW,
    fit_calibration,
    probabilities,
)
from termwise.recipes.pref.config import LEARNING_RATE, PrefConfig
from termwise.recipes.pref.data import EncodedPairs, encode_pairs, read_pairs
from termwise.recipes.pref.dev import dev_scores, evaluate_scores
from termwise.recipes.pref.eval import evaluate_predictions
from termwise.recipes.pref.recipe import build_model, setup
from termwise.trainer.checkpoint import CheckpointManager, load_trainable

MARK = "<!-- pref_vs_trl -->"
WARMUP_STEPS = 5
CATEGORIES = ("chat", "chat_hard", "safety", "reasoning")
CALIBRATION_SPLITS = 8


def step_time(stamps: list[float]) -> float:
    """Median interval between consecutive step ends, after the warm-up steps."""
    return float(np.median(np.diff(stamps[WARMUP_STEPS:])))


def bench_config(head: str, args: argparse.Namespace) -> PrefConfig:
    return PrefConfig.model_validate(
        {
            "kind": head,
            "train_path": str(args.data_dir / "train.jsonl"),
            "dev_path": str(args.data_dir / "dev.jsonl"),
            "backbone": {"max_length": args.max_length},
            **({"learning_rate": args.learning_rate} if args.learning_rate else {}),
            **(
                {"label_smoothing": args.label_smoothing}
                if args.label_smoothing is not None
                else {}
            ),
            "calibrate": False,
            "gpm": {
                key: value
                for key, value in (
                    ("tau", args.gpm_tau),
                    ("dim", args.gpm_dim),
                    ("reward_head", args.gpm_reward_head or None),
                )
                if value is not None
            },
            "trainer": {
                "seed": args.seed,
                "max_steps": args.max_steps,
                "batch_size": args.batch_size,
                "checkpoint_every": 0,
                "health_every": 50,
                "log_every": 50,
                "progress": False,
                "tensorboard": False,
            },
        }
    )


def run_termwise(head: str, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    model, config, seconds = train_termwise(head, args, args.output / head, console)
    return {**termwise_results(model, config, args), "step_time": seconds}


def train_termwise(
    head: str, args: argparse.Namespace, output: Path, console: Console
) -> tuple[Any, PrefConfig, float]:
    """A termwise model of kind ``head`` trained on ``args.data_dir/train.jsonl`` into
    ``output``; its config and the median seconds per step."""
    config = bench_config(head, args)
    session = setup(config, output, console)
    stamps: list[float] = []
    step = session.trainer.train_step

    def timed(batch: Any) -> None:
        step(batch)
        stamps.append(time.perf_counter())

    session.trainer.train_step = timed  # type: ignore[method-assign]
    session.trainer.fit()
    return session.model, config, step_time(stamps)


def termwise_results(model: Any, config: PrefConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Dev metrics of a trained termwise model, raw and cross-fitted, and its scores."""
    model.eval()
    # Scores once; the calibration is fitted by cross-fitting below, never on the pairs
    # it is judged on (the recipe's own fit on dev would be in-sample here).
    pairs, scores, _ = dev_scores(
        model,
        load_tokenizer(resolve_backbone(None)),
        args.data_dir / "dev.jsonl",
        config.backbone.scoring_length,
        config.bayes.n_samples,
    )
    results = evaluate_scores(pairs, scores, config.kind, RAW)
    calibrated = cross_fitted(pairs, scores, args.power_prior_sigma)
    return {**results, **calibrated, "scores": scores.tolist()}


def rescore_termwise(head: str, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """The model an earlier run saved in ``--rescore DIR/HEAD``, scored again (step time
    from that run's results.json)."""
    config = bench_config(head, args)
    run_dir = args.rescore / head
    checkpoint = CheckpointManager(run_dir).latest()
    if checkpoint is None:
        raise SystemExit(f"{run_dir}: no checkpoint to rescore")
    console.print(f"{head}: rescoring {checkpoint}")
    model = build_model(config, resolve_backbone(None))
    load_trainable(model, checkpoint)
    earlier = json.loads((args.rescore / "results.json").read_text(encoding="utf-8"))[head]
    return {**termwise_results(model, config, args), "step_time": earlier["step_time"]}


def earlier_trl(args: argparse.Namespace) -> dict[str, Any]:
    """TRL's row of the ``--rescore`` run (its model is not saved)."""
    earlier = json.loads((args.rescore / "results.json").read_text(encoding="utf-8"))["trl"]
    return recalibrated(earlier, args)


def recalibrated(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """A saved row with its calibrated columns computed again by this code from its saved
    dev scores; a row saved without scores loses them (they came from older code)."""
    if "scores" not in result:
        stale = ("ece_cal", "ece_cal_splits", "nll_cal", "temperatures", "powers")
        return {k: v for k, v in result.items() if k not in stale}
    pairs = read_pairs(args.data_dir / "dev.jsonl")[0]
    scores = np.asarray(result["scores"])
    return {**result, **cross_fitted(pairs, scores, args.power_prior_sigma)}


def stratified_halves(pairs: list[Any], seed: int) -> np.ndarray:
    """0/1 per pair: two halves of dev, each holding half of every category (seeded)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(pairs), dtype=int)
    for category in sorted({p.category for p in pairs}):
        rows = rng.permutation([i for i, p in enumerate(pairs) if p.category == category])
        fold[rows[len(rows) // 2 :]] = 1
    return fold


def cross_fitted(
    pairs: list[Any], scores: np.ndarray, power_prior_sigma: float = POWER_PRIOR_SIGMA
) -> dict[str, Any]:
    """ECE and NLL of probabilities calibrated by a fit on the other half of dev, averaged
    over ``CALIBRATION_SPLITS`` random splits; every fit's temperature and power."""
    eces, nlls, fits = [], [], []
    for split in range(CALIBRATION_SPLITS):
        fold = stratified_halves(pairs, split)
        p = np.zeros(len(pairs))
        for k in (0, 1):
            fit = fit_calibration(scores[:, fold != k], power_prior_sigma=power_prior_sigma)
            fits.append(fit)
            p[fold == k] = probabilities(scores[:, fold == k], fit.calibration)[0]
        calibrated = evaluate_predictions(pairs, p)
        eces.append(calibrated["ece"])
        nlls.append(calibrated["nll"])
    return {
        "ece_cal": float(np.mean(eces)),
        "ece_cal_splits": eces,
        "nll_cal": float(np.mean(nlls)),
        "temperatures": [fit.temperature for fit in fits],
        "powers": [fit.power for fit in fits],
    }


def run_trl(
    train: EncodedPairs, dev: EncodedPairs, args: argparse.Namespace, pad_id: int
) -> dict[str, Any]:
    model, seconds = train_trl(train, args, args.output / "trl")
    scores = trl_scores(model, dev, pad_id)
    results = evaluate_predictions(dev.pairs, probabilities(scores)[0])
    return {
        **results,
        **cross_fitted(dev.pairs, scores, args.power_prior_sigma),
        "scores": scores.tolist(),
        "step_time": seconds,
    }


def train_trl(train: EncodedPairs, args: argparse.Namespace, output: Path) -> tuple[Any, float]:
    """TRL's RewardTrainer (LoRA as termwise's) on ``train``: the model and s/step."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    stamps: list[float] = []

    class StepClock(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, *_: Any, **__: Any) -> None:
            stamps.append(time.perf_counter())

    path = resolve_backbone(None)
    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1)
    dataset = Dataset.from_dict({"chosen_ids": train.chosen, "rejected_ids": train.rejected})
    config = RewardConfig(
        output_dir=str(output),
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate or LEARNING_RATE["bt"],
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        bf16=False,
        fp16=False,
        use_cpu=True,
        seed=args.seed,
        logging_steps=50,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    lora = LoraConfig(
        task_type="SEQ_CLS",
        r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        target_modules=["query", "key", "value"],
    )
    trainer = RewardTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        peft_config=lora,
        callbacks=[StepClock()],
    )
    trainer.train()
    return trainer.model, step_time(stamps)


@torch.no_grad()
def trl_scores(model: Any, dev: EncodedPairs, pad_id: int) -> np.ndarray:
    """``r_chosen - r_rejected`` per dev pair, ``[1, pairs]``."""
    from termwise.recipes.pref.data import collate_pairs

    model.eval()
    scores = np.zeros((1, len(dev)))
    for rows in length_batches(dev.lengths().tolist(), 32):
        batch = collate_pairs(dev, rows, pad_id)
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        chosen, rejected = out.logits.squeeze(-1).double().chunk(2)
        scores[0, rows] = (chosen - rejected).numpy()
    return scores


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    trl_time = results["trl"]["step_time"] if "trl" in results else None
    lines = [
        "| model | "
        + " | ".join(CATEGORIES)
        + " | overall | ECE | ECE calibrated | NLL | NLL calibrated | T, power (median) "
        "| s/step | vs TRL |",
        "|---|" + "---|" * (len(CATEGORIES) + 8),
    ]
    for name, r in results.items():
        accuracy = [r["categories"].get(c, {}).get("accuracy") for c in CATEGORIES]
        # A time ratio only within one run (the machine is shared): merged rows get none.
        same_run = r.get("from") == results.get("trl", {}).get("from")
        ratio = f"{r['step_time'] / trl_time:.2f}x" if trl_time and same_run else "-"
        cells = " | ".join("-" if a is None else f"{100 * a:.1f}" for a in accuracy)
        lines.append(
            f"| {name} | {cells} | {100 * r['overall']:.1f} | {r['ece']:.3f} | "
            f"{number(r.get('ece_cal'))} | {r['nll']:.3f} | {number(r.get('nll_cal'))} | "
            f"{fitted(r)} | {r['step_time']:.3f} | {ratio} |"
        )
    return lines


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def fitted(result: dict[str, Any]) -> str:
    """Median temperature and power over the cross-fits (a run before the power: T only)."""
    if "temperatures" not in result:
        return "-"
    power = f", {np.median(result['powers']):.2f}" if "powers" in result else ""
    return f"{np.median(result['temperatures']):.2f}{power}"


def noise_line(results: dict[str, dict[str, Any]]) -> str:
    """The binomial standard error of ``overall`` (a mean of per-category accuracies)."""
    first = next(iter(results.values()))["categories"]
    errors = [
        np.sqrt(
            sum(c["accuracy"] * (1 - c["accuracy"]) / c["pairs"] for c in r["categories"].values())
        )
        / len(r["categories"])
        for r in results.values()
    ]
    smallest = min(first.items(), key=lambda kv: kv[1]["pairs"])
    return (
        f"Standard error of `overall` from the dev split's size: about "
        f"{100 * float(np.mean(errors)):.1f} points (one {smallest[0]} pair moves it by "
        f"{100 / len(first) / smallest[1]['pairs']:.1f}); 1-point goals sit inside that noise."
    )


def goals(results: dict[str, dict[str, Any]]) -> list[str]:
    def acc(name: str) -> float:
        return 100 * results[name]["overall"]

    checks = []
    if {"trl", "bt"} <= set(results):
        gap = acc("bt") - acc("trl")
        ratio = results["bt"]["step_time"] / results["trl"]["step_time"]
        checks.append(("bt accuracy within 1 point of TRL", abs(gap) <= 1, f"{gap:+.1f} points"))
        if results["bt"].get("from") == results["trl"].get("from"):  # one run's times only
            checks.append(("bt time per step <= 0.8x TRL", ratio <= 0.8, f"{ratio:.2f}x"))
    for name in ("gpm", "bayes_gpm"):
        if {name, "bt"} <= set(results):
            gap = acc(name) - acc("bt")
            checks.append((f"{name} overall >= bt", gap >= 0, f"{gap:+.1f} points"))
    for name in ("bt", "gpm", "bayes_gpm"):
        if {name, "trl"} <= set(results):
            mine, theirs = results[name]["ece_cal"], results["trl"]["ece"]
            splits = results[name].get("ece_cal_splits", [mine])
            below = sum(e <= theirs for e in splits)
            checks.append(
                (
                    f"{name} calibrated ECE <= TRL's",
                    mine <= theirs,
                    f"{mine:.3f} vs {theirs:.3f}; {below} of {len(splits)} splits",
                )
            )
    if {"gpm", "bayes_gpm"} <= set(results):
        gap = acc("bayes_gpm") - acc("gpm")
        ece = (results["bayes_gpm"]["ece"], results["gpm"]["ece"])
        checks.append(("bayes_gpm within 1 point of gpm", abs(gap) <= 1, f"{gap:+.1f} points"))
        checks.append(
            ("bayes_gpm ECE lower than gpm", ece[0] < ece[1], f"{ece[0]:.3f} vs {ece[1]:.3f}")
        )
    return [f"- {'met' if ok else 'NOT met'}: {goal} ({value})" for goal, ok, value in checks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/preferences"))
    parser.add_argument("--output", type=Path, default=Path("runs/bench_pref"))
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="every model's (default: each termwise kind's config default; bt's for TRL)",
    )
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--models", default="trl,bt,gpm,bayes_gpm")
    parser.add_argument("--seed", type=int, default=0, help="seeds every model's run")
    parser.add_argument(
        "--gpm-dim", type=int, default=None, help="gpm/bayes_gpm dim (default: the config's)"
    )
    parser.add_argument(
        "--gpm-tau", type=float, default=None, help="gpm/bayes_gpm tau (default: the config's)"
    )
    parser.add_argument(
        "--gpm-reward-head",
        action="store_true",
        help="gpm/bayes_gpm with a Bradley-Terry reward beside the skew-symmetric score",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=None,
        help="termwise models' Bradley-Terry label smoothing (default: the config's)",
    )
    parser.add_argument(
        "--from-results",
        type=Path,
        nargs="+",
        default=None,
        help="no training: report on earlier runs' results.json files, merged in order (a "
        "later file's model replaces an earlier one's); same data and seed assumed",
    )
    parser.add_argument(
        "--rescore",
        type=Path,
        default=None,
        help="no training: score dev again with the termwise models saved in this earlier "
        "run's output (same flags as that run); TRL's row comes from its results.json",
    )
    parser.add_argument(
        "--power-prior-sigma",
        type=float,
        default=POWER_PRIOR_SIGMA,
        help="prior std of log(power) in the cross-fitted calibration (0: temperature only); "
        "with --from-results, rows with saved scores are recalibrated with it",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        help="K outer folds of whole subsets held out (bench/_pref_folds.py); 0: the one "
        "train/dev split",
    )
    parser.add_argument("--seeds", default="0,1", help="with --folds: the seeds of every run")
    parser.add_argument(
        "--grid",
        nargs="+",
        default=None,
        help="with --folds: gpm/bayes_gpm candidates chosen by nested folds, as KEY=V1,V2 "
        "(KEY dim, tau, lr or reward: 0/1); the config's default is always a candidate",
    )
    parser.add_argument("--inner-folds", type=int, default=3, help="with --grid: inner folds")
    parser.add_argument(
        "--run-folds",
        type=int,
        nargs="+",
        default=None,
        help="with --folds: train only these outer folds (default all); the report covers "
        "every finished fold",
    )
    parser.add_argument("--write", action="store_true", help="Update docs/benchmarks.md.")
    args = parser.parse_args()
    if args.folds:
        from _pref_folds import run_folds

        run_folds(args)
        return
    if args.rescore is not None and args.rescore.resolve() == args.output.resolve():
        parser.error("--rescore reads the run in DIR: give another --output")
    if args.from_results:
        report_saved(args)
        return
    console = Console()
    started = time.perf_counter()
    tokenizer_path = resolve_backbone(None)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
    results: dict[str, dict[str, Any]] = {}
    for name in args.models.split(","):
        console.rule(name)
        if args.rescore is not None:
            results[name] = (
                earlier_trl(args) if name == "trl" else rescore_termwise(name, args, console)
            )
        elif name == "trl":
            train = encode_pairs(
                tokenizer, read_pairs(args.data_dir / "train.jsonl")[0], args.max_length
            )
            dev = encode_pairs(
                tokenizer, read_pairs(args.data_dir / "dev.jsonl")[0], args.max_length
            )
            results[name] = run_trl(train, dev, args, int(tokenizer.pad_token_id or 0))
        else:
            results[name] = run_termwise(name, args, console)
    minutes = (time.perf_counter() - started) / 60
    command = (
        f"`.venv/bin/python bench/pref_vs_trl.py --max-steps {args.max_steps} "
        f"--batch-size {args.batch_size} "
        + (f"--learning-rate {args.learning_rate} " if args.learning_rate else "")
        + f"--max-length {args.max_length}"
        + (f" --seed {args.seed}" if args.seed else "")
        + (f" --models {args.models}" if args.models != "trl,bt,gpm,bayes_gpm" else "")
        + (f" --gpm-tau {args.gpm_tau}" if args.gpm_tau is not None else "")
        + (f" --gpm-dim {args.gpm_dim}" if args.gpm_dim is not None else "")
        + (" --gpm-reward-head" if args.gpm_reward_head else "")
        + (f" --label-smoothing {args.label_smoothing}" if args.label_smoothing is not None else "")
        + (f" --rescore {args.rescore} --output {args.output}" if args.rescore else "")
        + sigma_flag(args)
        + " --write`"
    )
    lines = [
        "## Preference models vs TRL RewardTrainer",
        "",
        f"{command} ({minutes:.0f} min, 2 CPU cores). all-MiniLM-L6-v2, LoRA r 16 on "
        f"query/key/value, {args.max_steps} steps of {args.batch_size} pairs, "
        "train split of ../shared/data/preferences, dev accuracy (%) per category; TRL is "
        "`trl==1.13.0` `RewardTrainer` (`bf16=False`, pre-tokenised ids, the same ids).",
        "",
        *table(results),
        "",
        noise_line(results),
        "",
        *goals(results),
    ]
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    publish(MARK, lines, args.write, DOCS / "pref.md")


def sigma_flag(args: argparse.Namespace) -> str:
    sigma = args.power_prior_sigma
    return "" if sigma == POWER_PRIOR_SIGMA else f" --power-prior-sigma {sigma}"


def report_saved(args: argparse.Namespace) -> None:
    """The table and goals of models trained in earlier runs (``--from-results``)."""
    results: dict[str, dict[str, Any]] = {}
    for path in args.from_results:
        for name, result in json.loads(path.read_text(encoding="utf-8")).items():
            results[name] = recalibrated(result, args) | {"from": str(path.parent)}
    origin = "; ".join(f"{name} from `{r['from']}`" for name, r in results.items())
    lines = [
        "## Preference models vs TRL RewardTrainer (merged runs)",
        "",
        f"`.venv/bin/python bench/pref_vs_trl.py --from-results "
        f"{' '.join(str(p) for p in args.from_results)}{sigma_flag(args)}`: {origin}.",
        "",
        *table(results),
        "",
        noise_line(results),
        "",
        *goals(results),
    ]
    publish(MARK, lines, args.write, DOCS / "pref.md")


if __name__ == "__main__":
    main()
