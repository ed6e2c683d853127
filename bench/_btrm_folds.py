"""``bench/btrm_vs_baselines.py --folds K``: the config on K document-level folds.

Fold k holds out the documents dealt to it when each source's documents, in hash order, are
dealt round the K folds (rows of by-row sources by their hash): every document is held out
once, and every source is spread over the folds (``heldout_fold`` in the config). On each
fold: the reward model trained with the config, fastText and TF-IDF + LR on the same
training rows, all scored on the fold's held-out documents. Per fold: pairs behind each
baseline, mean AUC, every head's median positive and negative and its held-out documents;
then the spread (min, median, max) over folds. A finished fold (``OUTPUT/fold-k/fold.json``
written with the same config) is read back, not retrained; one written with another config
stops the run (it is never trained over).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
import yaml
from rich.console import Console

import termwise.recipes.btrm.recipe as btrm_recipe
from _doc import DOCS, publish
from termwise.config import load_yaml_config
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import MembershipTable, build_table
from termwise.trainer.recipe import run_recipe

MARK = "<!-- btrm_folds -->"
MARGIN = 0.005  # behind a baseline: more than this under it
LEVEL_BAND = (0.7, 1.3)
MIN_LEVEL_DOCUMENTS = 20  # a head's level is judged where it has this many held-out documents


def heldout_documents(table: MembershipTable) -> dict[str, int]:
    """Per head, the held-out documents among its positives."""
    rows = table.split(heldout=True)
    return {
        head: len(set(table.group[rows][table.positive[rows, h]].tolist()))
        for h, head in enumerate(table.heads)
    }


def saved_fold(args: argparse.Namespace, raw: dict[str, Any], index: int) -> dict[str, Any] | None:
    """Fold ``index`` as ``fold.json`` holds it, None when it has not finished; a fold
    written with another config stops the run."""
    done = args.output / f"fold-{index}" / "fold.json"
    if not done.is_file():
        return None
    saved = orjson.loads(done.read_bytes())
    if saved.get("config") == fold_config(args, raw, index):
        return dict(saved)
    # Never retrain over a finished fold: a path spelled another way would cost its model.
    raise SystemExit(
        f"{done}: written with another config "
        f"({first_difference(saved.get('config'), fold_config(args, raw, index))}); "
        "give another --output, or move that fold away to train it again"
    )


def fold_config(args: argparse.Namespace, raw: dict[str, Any], index: int) -> dict[str, Any]:
    return {**raw, "heldout_fold": {"index": index, "folds": args.folds}}


def fold_index(fold: dict[str, Any]) -> int:
    return int(fold["config"]["heldout_fold"]["index"])


def trained_fold(args: argparse.Namespace, raw: dict[str, Any], index: int) -> dict[str, Any]:
    """Fold ``index``: train, score the baselines, save ``fold.json``; or read it back."""
    from btrm_vs_baselines import aucs, baseline_scores, fasttext_scores

    saved = saved_fold(args, raw, index)
    if saved is not None:
        return saved
    output = args.output / f"fold-{index}"
    raw = fold_config(args, raw, index)
    output.mkdir(parents=True, exist_ok=True)
    (output / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    config = load_yaml_config(output / "config.yaml", BtrmConfig)
    started = time.perf_counter()
    ran = run_recipe(btrm_recipe, config, output / "train", Console(width=150), overwrite=True)
    minutes = (time.perf_counter() - started) / 60
    table = build_table(config)  # the fold's split, as the model's
    fold = {
        "config": raw,
        "minutes": minutes,
        "btrm": {
            h: entry for h, entry in ran.items() if isinstance(entry, dict) and "auc" in entry
        },
        "tfidf": aucs(table, baseline_scores(table)),
        "fasttext": aucs(table, fasttext_scores(table, args.seed)),
        "heldout_documents": heldout_documents(table),
    }
    partial = output / "fold.json.tmp"  # renamed when whole: a killed run leaves no fold.json
    partial.write_bytes(orjson.dumps(fold, option=orjson.OPT_INDENT_2))
    partial.replace(output / "fold.json")
    return fold


def first_difference(saved: Any, wanted: Any, where: str = "") -> str:
    """The first key path where two configs differ, with both values."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        for key in [*saved, *(k for k in wanted if k not in saved)]:
            if saved.get(key) != wanted.get(key):
                return first_difference(saved.get(key), wanted.get(key), f"{where}.{key}")
    if isinstance(saved, list) and isinstance(wanted, list) and len(saved) == len(wanted):
        for i, (a, b) in enumerate(zip(saved, wanted, strict=True)):
            if a != b:
                return first_difference(a, b, f"{where}[{i}]")
    return f"{where.lstrip('.')}: {saved!r} there, {wanted!r} now"


def fold_summary(fold: dict[str, Any]) -> dict[str, Any]:
    """Pairs behind each baseline, mean AUCs and the heads outside the level band."""
    behind: dict[str, list[str]] = {"fasttext": [], "tfidf": [], "tfidf_any": []}
    means: dict[str, list[float]] = {"btrm": [], "fasttext": [], "tfidf": []}
    for head, entry in fold["btrm"].items():
        for key, ours in entry["auc"].items():
            fast, tfidf = fold["fasttext"][head].get(key), fold["tfidf"][head].get(key)
            if ":" not in key or ours is None or fast is None or tfidf is None:
                continue
            means["btrm"].append(ours)
            means["fasttext"].append(fast)
            means["tfidf"].append(tfidf)
            pair = f"{head} vs {key} ({ours:.3f}; fastText {fast:.3f}, TF-IDF {tfidf:.3f})"
            if ours < fast - MARGIN:
                behind["fasttext"].append(pair)
            if ours < tfidf - MARGIN:
                behind["tfidf"].append(pair)
            if ours < tfidf:
                behind["tfidf_any"].append(pair)
    outside = [
        f"{head} {entry['median_positive']:.2f}"
        for head, entry in fold["btrm"].items()
        if fold["heldout_documents"][head] >= MIN_LEVEL_DOCUMENTS
        and not LEVEL_BAND[0] <= (entry["median_positive"] or 0.0) <= LEVEL_BAND[1]
    ]
    return {
        "pairs": len(means["btrm"]),
        "behind": behind,
        "mean": {name: float(np.mean(values)) for name, values in means.items()},
        "outside_band": outside,
    }


def spread(values: list[float], digits: int = 3) -> str:
    return " / ".join(
        f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values))
    )


def fold_lines(args: argparse.Namespace, folds: list[dict[str, Any]]) -> list[str]:
    from btrm_vs_baselines import override_flags

    summaries = [fold_summary(fold) for fold in folds]
    title = (
        f"## A candidate on the {args.folds} folds:{override_flags(args)}"
        if args.compare_with
        else f"## Multi-head reward model on {args.folds} document folds "
        "(`bench/btrm_vs_baselines.py --folds`)"
    )
    lines = [
        title,
        "",
        f"Command: `.venv/bin/python bench/btrm_vs_baselines.py --data-dir {args.data_dir} "
        f"--max-steps {args.max_steps} --folds {args.folds}{override_flags(args)}"
        f"{run_folds_flag(args)} --output {args.output}{compare_flag(args)}"
        f"{' --write' if args.write else ''}` (the "
        f"{'candidate' if args.compare_with else 'default'} config on each fold; fastText and "
        f"TF-IDF + LR on the same training rows; behind = more than {MARGIN} under; a head's "
        f"median positive judged against [{LEVEL_BAND[0]}, {LEVEL_BAND[1]}] where it has at "
        f"least {MIN_LEVEL_DOCUMENTS} held-out documents).",
        "",
        *finished_line(len(folds), args.folds),
        "| fold | pairs | behind fastText | behind TF-IDF | behind TF-IDF at all | mean AUC "
        "btrm / fastText / TF-IDF | heads outside the band | min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fold, s in zip(folds, summaries, strict=True):
        mean = s["mean"]
        lines.append(
            f"| {fold_index(fold)} | {s['pairs']} | {len(s['behind']['fasttext'])} | "
            f"{len(s['behind']['tfidf'])} | {len(s['behind']['tfidf_any'])} | "
            f"{mean['btrm']:.4f} / {mean['fasttext']:.4f} / {mean['tfidf']:.4f} | "
            f"{', '.join(s['outside_band']) or '-'} | {fold['minutes']:.1f} |"
        )
    counts = {
        key: [float(len(s["behind"][key])) for s in summaries]
        for key in ("fasttext", "tfidf", "tfidf_any")
    }
    lines += [
        "",
        "Spread over folds (min / median / max):",
        "",
        "| measure | spread |",
        "|---|---|",
        f"| pairs behind fastText | {spread(counts['fasttext'], 1)} |",
        f"| pairs behind TF-IDF | {spread(counts['tfidf'], 1)} |",
        f"| pairs behind TF-IDF at all | {spread(counts['tfidf_any'], 1)} |",
        f"| mean AUC, btrm | {spread([s['mean']['btrm'] for s in summaries])} |",
        f"| mean AUC, TF-IDF | {spread([s['mean']['tfidf'] for s in summaries])} |",
        f"| mean AUC, fastText | {spread([s['mean']['fasttext'] for s in summaries])} |",
    ]
    for head in folds[0]["btrm"]:
        positives = [f["btrm"][head]["median_positive"] for f in folds]
        negatives = [f["btrm"][head].get("median_negative") for f in folds]
        documents = [float(f["heldout_documents"][head]) for f in folds]
        lines.append(
            f"| {head}: median positive; negative; held-out documents | "
            f"{spread([p for p in positives if p is not None])}; "
            f"{spread([n for n in negatives if n is not None])}; {spread(documents, 0)} |"
        )
    behind = sorted({pair.split(" (")[0] for s in summaries for pair in s["behind"]["tfidf"]})
    lines += ["", "Pairs behind TF-IDF on some fold: " + ("; ".join(behind) or "none") + "."]
    return lines


def finished_line(finished: int, folds: int) -> list[str]:
    return [] if finished == folds else [f"Finished folds: {finished} of {folds}.", ""]


def run_folds_flag(args: argparse.Namespace) -> str:
    return "" if args.run_folds is None else " --run-folds " + " ".join(map(str, args.run_folds))


def compare_flag(args: argparse.Namespace) -> str:
    return "" if args.compare_with is None else f" --compare-with {args.compare_with}"


def run_folds(args: argparse.Namespace, raw: dict[str, Any]) -> None:
    """Train the requested folds (``--run-folds``, default all), then report every finished
    fold."""
    for k in range(args.folds) if args.run_folds is None else args.run_folds:
        trained_fold(args, raw, k)
    folds = [fold for k in range(args.folds) if (fold := saved_fold(args, raw, k)) is not None]
    if not folds:
        raise SystemExit(f"{args.output}: no finished fold to report (--run-folds trains some)")
    Path(args.output).mkdir(parents=True, exist_ok=True)
    if args.compare_with is None:
        publish(MARK, fold_lines(args, folds), args.write, DOCS / "btrm.md")
        return
    default = [read_fold(args.compare_with, fold_index(fold)) for fold in folds]
    lines = fold_lines(args, folds) + ["", *comparison_lines(args, default, folds)]
    publish(candidate_mark(args.output), lines, args.write, DOCS / "btrm.md")


def candidate_mark(output: str | Path) -> str:
    """A candidate's own section in docs/btrm.md, named by its output folder, so that a
    second candidate does not write over the first."""
    return f"<!-- btrm_candidate {Path(output).name} -->"


def read_fold(directory: Path, index: int) -> dict[str, Any]:
    path = directory / f"fold-{index}" / "fold.json"
    if not path.is_file():
        raise SystemExit(f"--compare-with: {path} is missing (run the default folds first)")
    return dict(orjson.loads(path.read_bytes()))


class Check(NamedTuple):
    name: str
    met: bool
    value: str
    every_fold: bool  # must hold on each fold: a finished fold that fails it decides


def rule_checks(default: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> list[Check]:
    """docs/btrm.md's rule for replacing a default, condition by condition, on the folds
    both sides have."""
    d = [fold_summary(f) for f in default]
    c = [fold_summary(f) for f in candidate]
    fast = [sum(len(s["behind"]["fasttext"]) for s in side) for side in (d, c)]
    tfidf = [
        (len(a["behind"]["tfidf"]), len(b["behind"]["tfidf"])) for a, b in zip(d, c, strict=True)
    ]
    drops = [b["mean"]["btrm"] - a["mean"]["btrm"] for a, b in zip(d, c, strict=True)]
    outside = [", ".join(s["outside_band"]) for s in c if s["outside_band"]]
    return [
        Check(
            "fewer pairs behind fastText, summed over the folds",
            fast[1] < fast[0],
            f"{fast[1]} against {fast[0]}",
            every_fold=False,
        ),
        Check(
            "on no fold more pairs behind TF-IDF",
            all(b <= a for a, b in tfidf),
            ", ".join(f"{b} against {a}" for a, b in tfidf),
            every_fold=True,
        ),
        Check(
            "every judged head inside the band on every fold",
            not outside,
            "; ".join(outside) or "all",
            every_fold=True,
        ),
        Check(
            "mean AUC at least the default's minus 0.001 on every fold",
            min(drops) >= -0.001,
            f"smallest change {min(drops):+.4f}",
            every_fold=True,
        ),
    ]


def verdict(checks: list[Check], finished: int, folds: int) -> str:
    """The rule's verdict; on some of the folds, only what the others cannot change."""
    if finished == folds:
        passed = all(check.met for check in checks)
        return "the candidate replaces the default" if passed else "the default stays"
    if any(check.every_fold and not check.met for check in checks):
        return (
            f"the default stays: on {finished} of {folds} folds a condition that must hold "
            "on every fold already fails, which the other folds cannot change"
        )
    return f"not decided: {finished} of {folds} folds finished"


def comparison_lines(
    args: argparse.Namespace, default: list[dict[str, Any]], candidate: list[dict[str, Any]]
) -> list[str]:
    """The candidate against the default on the same folds, and the rule's verdict."""
    same = all(a["tfidf"] == b["tfidf"] for a, b in zip(default, candidate, strict=True))
    rows = []
    for a, b in zip(default, candidate, strict=True):
        sa, sb = fold_summary(a), fold_summary(b)
        rows.append(
            f"| {fold_index(b)} | {len(sa['behind']['fasttext'])} / "
            f"{len(sb['behind']['fasttext'])} | "
            f"{len(sa['behind']['tfidf'])} / {len(sb['behind']['tfidf'])} | "
            f"{sa['mean']['btrm']:.4f} / {sb['mean']['btrm']:.4f} |"
        )
    checks = rule_checks(default, candidate)
    return [
        f"Against the default (`{args.compare_with}`), default / candidate per fold"
        + ("" if same else " (WARNING: the TF-IDF scores differ, so the folds do not match)")
        + ":",
        "",
        "| fold | behind fastText | behind TF-IDF | mean AUC |",
        "|---|---|---|---|",
        *rows,
        "",
        "The rule (docs/btrm.md), condition by condition:",
        "",
        *(f"- {'met' if c.met else 'NOT met'}: {c.name} ({c.value})" for c in checks),
        "",
        f"Verdict: {verdict(checks, len(candidate), args.folds)}.",
    ]
