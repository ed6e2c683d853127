"""``bench/pref_vs_trl.py --folds K``: preference models scored on whole subsets they never saw.

Outer fold k holds out the subsets dealt to it when the subsets, in (category, name) order,
are dealt round the K folds, so a category's subsets fall in different folds and a category
with one subset is, on its fold, a kind of prompt the models never trained on. On each fold
and seed, every model (TRL's RewardTrainer, bt, gpm, bayes_gpm) trains on the train rows of
the other subsets; the calibration (temperature and power) is fitted on their dev rows; both
are judged on every row (train and dev) of the held-out subsets. A choice (``--grid``:
gpm's and bayes_gpm's dimension, tau, learning rate, a reward beside the embedding) is made
by nested folds: the fold's training subsets dealt round ``--inner-folds`` inner folds,
each candidate trained on the others and scored on the inner held-out subsets, the best mean
accuracy kept (the config's default wins a tie); only then is the chosen candidate trained
on the outer fold and scored there, so no choice ever sees the subsets it is judged on. A
finished run (``result.json`` with the same spec) is read back, not retrained.

    .venv/bin/python bench/pref_vs_trl.py --folds 4 --seeds 0,1 [--grid dim=2,8]
        [--run-folds 0] --output runs/pref-folds [--write]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from _doc import DOCS, publish
from termwise.recipes.pref.calibration import fit_calibration, probabilities
from termwise.recipes.pref.data import PreferencePair, encode_pairs, read_pairs
from termwise.recipes.pref.eval import evaluate_predictions

MARK = "<!-- pref_folds -->"
GRID_KEYS = {
    "dim": "gpm_dim",
    "tau": "gpm_tau",
    "lr": "learning_rate",
    "reward": "gpm_reward_head",  # 0 or 1
}
CAST = {"gpm_dim": int, "gpm_reward_head": bool}
GRID_MODELS = ("gpm", "bayes_gpm")  # the kinds a --grid choice applies to


def deal_subsets(records: list[dict[str, Any]], folds: int) -> dict[str, int]:
    """Each subset's fold: subsets in (category, name) order dealt round ``folds``."""
    names = sorted({(r["category"], r["subset"]) for r in records})
    return {subset: i % folds for i, (_, subset) in enumerate(names)}


def read_records(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """``records`` to ``path`` through a temporary renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    os.replace(partial, path)


def split_files(
    train: list[dict[str, Any]], dev: list[dict[str, Any]], held: set[str], directory: Path
) -> None:
    """``directory``: train.jsonl and dev.jsonl (the calibration rows) of the subsets not in
    ``held``, heldout.jsonl with every row of those in it."""
    write_jsonl(directory / "train.jsonl", [r for r in train if r["subset"] not in held])
    write_jsonl(directory / "dev.jsonl", [r for r in dev if r["subset"] not in held])
    write_jsonl(directory / "heldout.jsonl", [r for r in train + dev if r["subset"] in held])


def grid_candidates(grid: list[str]) -> list[dict[str, float]]:
    """``["dim=2,8", "tau=0.15"]`` -> every combination, as overrides by bench flag."""
    axes: list[list[tuple[str, float]]] = []
    for axis in grid:
        key, _, values = axis.partition("=")
        if key not in GRID_KEYS or not values:
            raise SystemExit(
                f"--grid {axis!r}: expected KEY=V1,V2 with KEY one of {list(GRID_KEYS)}"
            )
        axes.append([(GRID_KEYS[key], float(v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)]


def label(name: str, overrides: dict[str, float]) -> str:
    return name + "".join(f"-{k}{v:g}" for k, v in sorted(overrides.items()))


class FoldRunner:
    """Trains and scores one model on one split directory, or reads its result back."""

    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        from termwise.models.backbone import load_tokenizer, resolve_backbone

        self.args, self.console = args, console
        self.tokenizer = load_tokenizer(resolve_backbone(None))  # every model's, TRL's too

    def spec(
        self, name: str, overrides: dict[str, float], seed: int, split: Path
    ) -> dict[str, Any]:
        a = self.args
        held = sorted({r["subset"] for r in read_records(split / "heldout.jsonl")})
        return {
            "model": name,
            "overrides": overrides,
            "seed": seed,
            "max_steps": a.max_steps,
            "batch_size": a.batch_size,
            "max_length": a.max_length,
            "learning_rate": a.learning_rate,
            "held_out": held,
        }

    def result(
        self, name: str, overrides: dict[str, float], seed: int, split: Path
    ) -> dict[str, Any]:
        run_dir = split / f"seed-{seed}" / label(name, overrides)
        done = run_dir / "result.json"
        spec = self.spec(name, overrides, seed, split)
        if done.is_file():
            saved = json.loads(done.read_text(encoding="utf-8"))
            if saved.get("spec") == spec:
                return dict(saved)
        self.console.rule(f"{split.name} seed {seed}: {label(name, overrides)}")
        started = time.perf_counter()
        held, held_scores, calibration_scores, seconds = self.train_and_score(
            name, overrides, seed, split, run_dir
        )
        result = {
            "spec": spec,
            **scored(held, held_scores, calibration_scores),
            "step_time": seconds,
            "minutes": (time.perf_counter() - started) / 60,
        }
        run_dir.mkdir(parents=True, exist_ok=True)
        partial = done.with_name("result.json.partial")
        partial.write_text(json.dumps(result), encoding="utf-8")
        os.replace(partial, done)
        return result

    def train_and_score(
        self, name: str, overrides: dict[str, float], seed: int, split: Path, run_dir: Path
    ) -> tuple[list[PreferencePair], np.ndarray, np.ndarray, float]:
        from pref_vs_trl import train_termwise, train_trl, trl_scores
        from termwise.recipes.pref.dev import dev_scores

        args = argparse.Namespace(**{**vars(self.args), "data_dir": split, "seed": seed})
        for dest, value in overrides.items():
            setattr(args, dest, CAST.get(dest, float)(value))
        held = read_pairs(split / "heldout.jsonl")[0]
        calibration = read_pairs(split / "dev.jsonl")[0]
        if name == "trl":
            length = args.max_length
            train = encode_pairs(self.tokenizer, read_pairs(split / "train.jsonl")[0], length)
            model, seconds = train_trl(train, args, run_dir / "trl")
            pad = int(self.tokenizer.pad_token_id or 0)
            return (
                held,
                trl_scores(model, encode_pairs(self.tokenizer, held, length), pad),
                trl_scores(model, encode_pairs(self.tokenizer, calibration, length), pad),
                seconds,
            )
        model, config, seconds = train_termwise(name, args, run_dir, self.console)
        model.eval()
        tokenizer = self.tokenizer
        length, draws = config.backbone.scoring_length, config.bayes.n_samples
        _, held_scores, _ = dev_scores(model, tokenizer, split / "heldout.jsonl", length, draws)
        _, cal_scores, _ = dev_scores(model, tokenizer, split / "dev.jsonl", length, draws)
        return held, held_scores, cal_scores, seconds


def scored(
    held: list[PreferencePair], scores: np.ndarray, calibration_scores: np.ndarray
) -> dict[str, Any]:
    """Raw metrics on the held-out pairs, and under a calibration fitted on the training
    subsets' dev pairs (never on a held-out one)."""
    raw = evaluate_predictions(held, probabilities(scores)[0])
    fit = fit_calibration(calibration_scores)
    calibrated = evaluate_predictions(held, probabilities(scores, fit.calibration)[0])
    return {
        "categories": {
            c: {"pairs": e["pairs"], "accuracy": e["accuracy"], "subsets": e["subsets"]}
            for c, e in raw["categories"].items()
        },
        "overall": raw["overall"],
        "ece": raw["ece"],
        "nll": raw["nll"],
        "ece_cal": calibrated["ece"],
        "nll_cal": calibrated["nll"],
        "temperature": fit.temperature,
        "power": fit.power,
        "ids": [p.id for p in held],
        "scores": scores.tolist(),
    }


def choose(
    runner: FoldRunner,
    name: str,
    candidates: list[dict[str, float]],
    seed: int,
    outer: Path,
    train: list[dict[str, Any]],
    dev: list[dict[str, Any]],
    inner_folds: int,
) -> tuple[dict[str, float], dict[str, float]]:
    """The candidate with the best mean inner held-out accuracy (first wins a tie), and
    every candidate's mean."""
    training = [r for r in train + dev if r["subset"] not in outer_held(outer)]
    dealt = deal_subsets(training, inner_folds)
    inner_train = [r for r in train if r["subset"] in dealt]
    inner_dev = [r for r in dev if r["subset"] in dealt]
    means: dict[str, float] = {}
    for candidate in candidates:
        accuracies = []
        for j in range(inner_folds):
            split = outer / f"inner-{j}"
            held = {s for s, f in dealt.items() if f == j}
            if not (split / "heldout.jsonl").is_file():
                split_files(inner_train, inner_dev, held, split)
            accuracies.append(runner.result(name, candidate, seed, split)["overall"])
        means[label(name, candidate)] = float(np.mean(accuracies))
    best = max(candidates, key=lambda c: means[label(name, c)])  # max keeps the first of ties
    return best, means


def outer_held(outer: Path) -> set[str]:
    return {r["subset"] for r in read_records(outer / "heldout.jsonl")}


def run_folds(args: argparse.Namespace) -> None:
    """Every requested outer fold, seed and model; then the report over finished folds."""
    console = Console(width=150)
    train = read_records(args.data_dir / "train.jsonl")
    dev = read_records(args.data_dir / "dev.jsonl")
    dealt = deal_subsets(train + dev, args.folds)
    seeds = [int(s) for s in args.seeds.split(",")]
    models = args.models.split(",")
    candidates = grid_candidates(args.grid) if args.grid else []
    runner = FoldRunner(args, console)
    run_folds_list = range(args.folds) if args.run_folds is None else args.run_folds
    for k in run_folds_list:
        outer = args.output / f"fold-{k}"
        split_files(train, dev, {s for s, f in dealt.items() if f == k}, outer)
        for seed in seeds:
            for name in models:
                runner.result(name, {}, seed, outer)
                if candidates and name in GRID_MODELS:
                    best, means = choose(
                        runner, name, [{}, *candidates], seed, outer, train, dev, args.inner_folds
                    )
                    chosen = runner.result(name, best, seed, outer)
                    record_choice(
                        outer / f"seed-{seed}" / f"{name}-chosen.json", best, means, chosen
                    )
    publish(MARK, report(args, dealt, seeds, models), args.write, DOCS / "pref.md")


def record_choice(
    path: Path, best: dict[str, float], means: dict[str, float], chosen: dict[str, Any]
) -> None:
    path.write_text(
        json.dumps({"chosen": best, "inner_means": means, "spec": chosen["spec"]}), encoding="utf-8"
    )


def finished(
    args: argparse.Namespace, seeds: list[int], models: list[str]
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """Per finished outer fold (every model and seed read back), each row's results by seed;
    a nested choice as the row ``<model> (nested)``."""
    folds: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for k in range(args.folds):
        rows: dict[str, list[dict[str, Any]]] = {}
        for seed in seeds:
            base = args.output / f"fold-{k}" / f"seed-{seed}"
            for name in models:
                path = base / label(name, {}) / "result.json"
                if path.is_file():
                    rows.setdefault(name, []).append(json.loads(path.read_text(encoding="utf-8")))
                choice = base / f"{name}-chosen.json"
                if choice.is_file():
                    best = json.loads(choice.read_text(encoding="utf-8"))["chosen"]
                    result = base / label(name, best) / "result.json"
                    picked = json.loads(result.read_text(encoding="utf-8")) | {"chosen": best}
                    rows.setdefault(f"{name} (nested)", []).append(picked)
        if rows and all(len(rows.get(name, [])) == len(seeds) for name in models):
            folds[k] = rows
    return folds


def category_accuracy(results: list[dict[str, Any]], category: str) -> float | None:
    """Mean over seeds of the category's accuracy, or None where the fold holds none of it."""
    values = [r["categories"][category]["accuracy"] for r in results if category in r["categories"]]
    return float(np.mean(values)) if values else None


def pooled_category(
    folds: dict[int, dict[str, list[dict[str, Any]]]], row: str, category: str
) -> float | None:
    """A category's accuracy with its held-out pairs pooled over folds (mean over seeds)."""
    correct = pairs = 0.0
    for rows in folds.values():
        for result in rows.get(row, []):
            entry = result["categories"].get(category)
            if entry is not None:
                correct += entry["accuracy"] * entry["pairs"] / len(rows[row])
                pairs += entry["pairs"] / len(rows[row])
    return correct / pairs if pairs else None


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    v = [scale * x for x in values]
    parts = " / ".join(f"{x:.{digits}f}" for x in (min(v), statistics.median(v), max(v)))
    return f"{np.mean(v):.{digits}f} ({parts})"


CATEGORIES = ("chat", "chat_hard", "safety", "reasoning")


def report(
    args: argparse.Namespace, dealt: dict[str, int], seeds: list[int], models: list[str]
) -> list[str]:
    folds = finished(args, seeds, models)
    flags = f" --grid {' '.join(args.grid)} --inner-folds {args.inner_folds}" if args.grid else ""
    lines = [
        f"## Preference models on subsets they never saw ({args.folds} outer folds)",
        "",
        f"Command: `.venv/bin/python bench/pref_vs_trl.py --folds {args.folds} --seeds "
        f"{args.seeds} --models {args.models} --max-steps {args.max_steps} --batch-size "
        f"{args.batch_size} --max-length {args.max_length}{flags} --output {args.output} "
        "--write` (2 CPU cores). Trained on the train rows of the other subsets, calibrated "
        "on their dev rows, judged on every row of the held-out subsets; accuracy in %, the "
        "mean over seeds.",
        "",
        "| fold | held-out subsets |",
        "|---|---|",
        *(
            f"| {k} | {', '.join(sorted(s for s, f in dealt.items() if f == k))} |"
            for k in range(args.folds)
        ),
        "",
        f"Finished folds: {len(folds)} of {args.folds}.",
        "",
    ]
    if not folds:
        return lines
    rows = [row for row in next(iter(folds.values())) if all(row in f for f in folds.values())]
    lines += [
        "| fold | model | "
        + " | ".join(CATEGORIES)
        + " | mean of categories | ECE | ECE calibrated | NLL calibrated |",
        "|---|---|" + "---|" * (len(CATEGORIES) + 4),
    ]
    for k, by_row in folds.items():
        for row in rows:
            results = by_row[row]
            cells = [category_accuracy(results, c) for c in CATEGORIES]
            means = [
                float(np.mean([r[key] for r in results]))
                for key in ("overall", "ece", "ece_cal", "nll_cal")
            ]
            lines.append(
                f"| {k} | {row} | "
                + " | ".join("-" if c is None else f"{100 * c:.1f}" for c in cells)
                + f" | {100 * means[0]:.1f} | {means[1]:.3f} | {means[2]:.3f} | {means[3]:.3f} |"
            )
    lines += [
        "",
        "Over the folds: each category's held-out pairs pooled over folds; the mean of "
        "categories and the ECEs as mean (min / median / max) over folds.",
        "",
        "| model | " + " | ".join(CATEGORIES) + " | mean of categories | ECE | ECE calibrated |",
        "|---|" + "---|" * (len(CATEGORIES) + 3),
    ]
    summary: dict[str, dict[str, Any]] = {}
    for row in rows:
        overall = [float(np.mean([r["overall"] for r in f[row]])) for f in folds.values()]
        ece = [float(np.mean([r["ece_cal"] for r in f[row]])) for f in folds.values()]
        raw = [float(np.mean([r["ece"] for r in f[row]])) for f in folds.values()]
        cats = {c: pooled_category(folds, row, c) for c in CATEGORIES}
        summary[row] = {"overall": overall, "ece_cal": ece, "ece": raw, "categories": cats}
        lines.append(
            f"| {row} | "
            + " | ".join("-" if v is None else f"{100 * v:.1f}" for v in cats.values())
            + f" | {spread(overall, 100)} | {spread(raw, 1, 3)} | {spread(ece, 1, 3)} |"
        )
    lines += ["", *choices(folds), *goals(summary, len(folds))]
    if {"bt", "gpm"} <= set(rows):
        lines += ["", *hard_pairs(args, folds)]
    return lines


def choices(folds: dict[int, dict[str, list[dict[str, Any]]]]) -> list[str]:
    """What each nested choice picked, per fold and seed."""
    picked = [
        f"fold {k}: " + ", ".join(str(r["chosen"] or "default") for r in results)
        for k, rows in folds.items()
        for row, results in rows.items()
        if row.endswith("(nested)")
    ]
    return [f"Nested choices (per seed): {'; '.join(picked)}.", ""] if picked else []


def goals(summary: dict[str, dict[str, Any]], folds: int) -> list[str]:
    """Issue 47's bar, for gpm's default and for every nested choice."""
    if "bt" not in summary or "trl" not in summary:
        return []
    checks = []
    bt, trl = summary["bt"], summary["trl"]
    for row in (r for r in summary if r.startswith("gpm")):
        mine = summary[row]
        gap = 100 * (np.mean(mine["overall"]) - np.mean(bt["overall"]))
        checks.append(
            (f"{row}: mean of categories over folds >= bt's", gap >= 0, f"{gap:+.1f} points")
        )
        hard = (mine["categories"]["chat_hard"], bt["categories"]["chat_hard"])
        if None not in hard:
            d = 100 * (hard[0] - hard[1])
            checks.append((f"{row}: chat_hard >= bt's", d >= 0, f"{d:+.1f} points"))
        worst = [
            (c, 100 * (mine["categories"][c] - trl["categories"][c]))
            for c in CATEGORIES
            if mine["categories"][c] is not None and trl["categories"][c] is not None
        ]
        if worst:
            c, d = min(worst, key=lambda item: item[1])
            checks.append(
                (f"{row}: within 1 point of TRL on every category", d >= -1, f"worst {c} {d:+.1f}")
            )
        trl_mean = float(np.mean(trl["ece"]))  # TRL's users get its raw probabilities
        above = sum(e > trl_mean for e in mine["ece_cal"])
        checks.append(
            (
                f"{row}: calibrated ECE <= TRL's mean raw ECE ({trl_mean:.3f}) on every fold",
                above == 0,
                f"{above} of {folds} folds above",
            )
        )
    return [f"- {'met' if ok else 'NOT met'}: {goal} ({value})" for goal, ok, value in checks]


def hard_pairs(
    args: argparse.Namespace, folds: dict[int, dict[str, list[dict[str, Any]]]]
) -> list[str]:
    """Where gpm and bt part on the held-out chat_hard subsets: per subset and fold, the
    pairs each gets right that the other does not, gpm's median |logit| on its right and
    wrong pairs, and the pairs gpm gets most confidently wrong where bt is right."""
    lines = [
        "On the held-out chat_hard subsets, gpm against bt (first seed): pairs, accuracy, "
        "pairs only one of them gets right, gpm's median |logit| when right / wrong.",
        "",
        "| fold | subset | pairs | bt | gpm | only bt right | only gpm right "
        "| gpm abs logit right / wrong |",
        "|---|---|---|---|---|---|---|---|",
    ]
    examples: list[tuple[float, str]] = []
    for k, rows in folds.items():
        bt, gpm = rows["bt"][0], rows["gpm"][0]
        texts = {r["id"]: r for r in read_records(args.output / f"fold-{k}" / "heldout.jsonl")}
        bt_scores, gpm_scores = bt_gpm_scores(bt, gpm)
        for subset in sorted(gpm["categories"].get("chat_hard", {}).get("subsets", {})):
            rows_in = [i for i, key in enumerate(gpm["ids"]) if texts[key]["subset"] == subset]
            b, g = bt_scores[rows_in] > 0, gpm_scores[rows_in] > 0
            size = np.abs(gpm_scores[rows_in])
            right = f"{np.median(size[g]):.2f}" if g.any() else "-"
            wrong = f"{np.median(size[~g]):.2f}" if (~g).any() else "-"
            lines.append(
                f"| {k} | {subset} | {len(rows_in)} | {100 * b.mean():.1f} | "
                f"{100 * g.mean():.1f} | {int((b & ~g).sum())} | {int((g & ~b).sum())} | "
                f"{right} / {wrong} |"
            )
            for i in np.flatnonzero(b & ~g):
                record = texts[gpm["ids"][rows_in[i]]]
                examples.append(
                    (float(size[i]), example_line(record, float(gpm_scores[rows_in[i]])))
                )
    worst = [line for _, line in sorted(examples, reverse=True)[:3]]
    return lines + (
        ["", "gpm most confidently wrong where bt is right:", "", *worst] if worst else []
    )


def bt_gpm_scores(bt: dict[str, Any], gpm: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Each model's mean score per held-out pair (draws averaged), in gpm's pair order."""
    if bt["ids"] != gpm["ids"]:
        raise SystemExit("bt and gpm were scored on different held-out pairs")
    return np.asarray(bt["scores"]).mean(0), np.asarray(gpm["scores"]).mean(0)


def example_line(record: dict[str, Any], logit: float) -> str:
    def cut(text: str) -> str:
        return " ".join(text.split())[:140]

    return (
        f'- `{record["id"]}` (gpm logit {logit:+.2f}): prompt "{cut(record["prompt"])}"; '
        f'chosen "{cut(record["chosen"])}"; rejected "{cut(record["rejected"])}"'
    )
