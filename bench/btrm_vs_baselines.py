"""The multi-head reward model against what a data-filtering pipeline would use instead:
fastText supervised classifiers and TF-IDF + logistic regression.

Trains ``termwise btrm`` with the default config (all-MiniLM-L6-v2, LoRA) over the full
corpora for a CPU-time budget, then trains both baselines on the SAME split (each source's
hash-assigned held-out documents are excluded from all three), one-vs-rest per head, the
head's positives against all its negatives: fastText (supervised, word bigrams, 25 epochs)
and TF-IDF of word 1-2 grams with a logistic regression. All three are scored on the
held-out documents: per head the AUC against each negative tier and against every
(tier, other source) pair; the per-pair table counts where the model is behind either
baseline by more than 0.005.

    .venv/bin/python bench/btrm_vs_baselines.py [--data-dir ../shared/data/corpora]
        [--max-steps N (default: the config's)] [--write]

fastText comes from the bench extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml
from rich.console import Console

import termwise.recipes.btrm.recipe as btrm_recipe
from _doc import DOCS, publish
from termwise.config import load_yaml_config
from termwise.recipes.btrm.config import DEFAULT_STEPS, BtrmConfig, default_config
from termwise.recipes.btrm.data import TIER_NAMES, MembershipTable, build_table
from termwise.recipes.btrm.evaluate import source_name
from termwise.trainer.recipe import run_recipe

MARK = "<!-- btrm_vs_tfidf -->"  # the section keeps its marker in docs/btrm.md


def baseline_scores(table: MembershipTable) -> np.ndarray:
    """Held-out scores ``[heldout rows, heads]`` of the TF-IDF one-vs-rest baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train_rows, test_rows = table.split(heldout=False), table.split(heldout=True)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vectorizer.fit_transform([table.texts[i] for i in train_rows])
    x_test = vectorizer.transform([table.texts[i] for i in test_rows])
    scores = np.zeros((len(test_rows), len(table.heads)))
    for h in range(len(table.heads)):
        positive = table.positive[train_rows, h]
        labelled = positive | (table.negative_tier[train_rows, h] > 0)
        model = LogisticRegression(max_iter=2000, C=4.0)
        model.fit(x_train[labelled], positive[labelled])
        scores[:, h] = model.decision_function(x_test)
    return scores


def require_fasttext() -> None:
    """Stop before training when the fastText arm cannot run: it runs after the model."""
    if importlib.util.find_spec("fasttext") is None:
        raise SystemExit(
            "bench/btrm_vs_baselines.py: the fasttext module is missing; install the bench "
            "extra first (.venv/bin/python -m pip install -e '.[bench]', as make bench-btrm does)"
        )


def fasttext_scores(table: MembershipTable, seed: int = 0) -> np.ndarray:
    """Held-out scores ``[heldout rows, heads]``: P(positive) of a fastText supervised
    classifier per head (word bigrams), trained on the head's labelled training rows."""
    import tempfile

    import fasttext

    train_rows, test_rows = table.split(heldout=False), table.split(heldout=True)

    def one_line(text: str) -> str:
        return " ".join(text.split())

    tests = [one_line(table.texts[i]) for i in test_rows]
    scores = np.zeros((len(test_rows), len(table.heads)))
    with tempfile.TemporaryDirectory(prefix="fasttext_") as tmp:
        for h in range(len(table.heads)):
            positive = table.positive[train_rows, h]
            labelled = positive | (table.negative_tier[train_rows, h] > 0)
            path = Path(tmp) / f"head{h}.txt"
            path.write_text(
                "".join(
                    f"__label__{'pos' if p else 'neg'} {one_line(table.texts[i])}\n"
                    for i, p, keep in zip(train_rows, positive, labelled, strict=True)
                    if keep
                ),
                encoding="utf-8",
            )
            model = fasttext.train_supervised(
                str(path), wordNgrams=2, epoch=25, lr=0.5, dim=50, verbose=0, seed=seed, thread=1
            )
            for j, text in enumerate(tests):
                # model.f.predict: fastText's own predict() breaks on numpy 2 (copy=False).
                ranked = dict((label, p) for p, label in model.f.predict(text, 2, 0.0, "strict"))
                scores[j, h] = ranked.get("__label__pos", 0.0) - ranked.get("__label__neg", 0.0)
    return scores


def aucs(table: MembershipTable, scores: np.ndarray) -> dict[str, dict[str, float | None]]:
    """Per head, the keys of the recipe's own evaluation: AUC vs each non-soft tier and vs
    each (tier, source) pair, on held-out rows."""
    from sklearn.metrics import roc_auc_score

    rows = table.split(heldout=True)
    out: dict[str, dict[str, float | None]] = {}
    for h, head in enumerate(table.heads):
        pos = table.positive[rows, h]
        tiers = table.negative_tier[rows, h]
        groups = {name: tiers == code for code, name in TIER_NAMES.items() if name != "soft_neg"}
        for code, name in TIER_NAMES.items():
            for key in np.unique(table.source[rows][tiers == code]):
                groups[f"{name}:{source_name(key)}"] = (tiers == code) & (table.source[rows] == key)
        out[head] = {}
        for name, negative in groups.items():
            if pos.any() and negative.any():
                labels = np.r_[np.ones(pos.sum()), np.zeros(negative.sum())]
                values = np.r_[scores[pos, h], scores[negative, h]]
                out[head][name] = float(roc_auc_score(labels, values))
    return out


def pair_lines(
    results: dict[str, Any],
    fast: dict[str, dict[str, float | None]],
    tfidf: dict[str, dict[str, float | None]],
    margin: float = 0.005,
) -> list[str]:
    """Every (head, tier:source) pair: the model, fastText, TF-IDF; behind when the model
    is more than ``margin`` under either."""
    rows, behind, means = [], [], {"btrm": [], "fasttext": [], "tfidf": []}
    for head, entry in results.items():
        for key, ours in sorted(entry["auc"].items()):
            if ":" not in key or ours is None:
                continue
            a, b = fast[head].get(key), tfidf[head].get(key)
            if a is None or b is None:
                continue
            means["btrm"].append(ours)
            means["fasttext"].append(a)
            means["tfidf"].append(b)
            late = ours < max(a, b) - margin
            if late:
                behind.append(f"{head} vs {key} ({ours:.3f}; fastText {a:.3f}, TF-IDF {b:.3f})")
            rows.append(
                f"| {head} | {key} | {ours:.3f} | {a:.3f} | {b:.3f} | {'behind' if late else ''} |"
            )
    mean = {k: float(np.mean(v)) if v else float("nan") for k, v in means.items()}
    return [
        "",
        f"Per (head, tier:source) pair, {len(rows)} pairs; mean AUC: btrm {mean['btrm']:.3f}, "
        f"fastText {mean['fasttext']:.3f}, TF-IDF {mean['tfidf']:.3f}; the model is behind "
        f"either baseline by more than {margin} on {len(behind)} pairs.",
        "",
        "| head | negative tier:source | btrm | fastText | TF-IDF | |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Behind: " + ("; ".join(behind) if behind else "none") + ".",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/corpora"))
    parser.add_argument("--max-steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--output", type=Path, default=Path("runs/btrm-full"))
    parser.add_argument(
        "--log-square-weight",
        type=float,
        default=None,
        help="override the config's log_square_weight",
    )
    parser.add_argument("--log-square-form", default=None, help="override log_square_form")
    parser.add_argument("--max-length", type=int, default=None, help="override training tokens")
    parser.add_argument(
        "--mixed-precision", choices=["no", "bf16"], default=None, help="trainer autocast"
    )
    parser.add_argument("--seed", type=int, default=0, help="trainer seed (data order, init)")
    parser.add_argument(
        "--no-lexical",
        dest="lexical",
        action="store_false",
        help="without the lexical branch (hashed n-grams summed into the heads)",
    )
    parser.add_argument("--lexical-lr", type=float, default=None, help="the branch's learning rate")
    parser.add_argument(
        "--hard-negative-gamma", type=float, default=None, help="override hard_negative_gamma"
    )
    parser.add_argument(
        "--prefit-epochs", type=int, default=None, help="override lexical.prefit_epochs"
    )
    parser.add_argument(
        "--furthest-weight", type=float, default=None, help="override tier_weights.furthest_neg"
    )
    parser.add_argument(
        "--soft-weight", type=float, default=None, help="override tier_weights.soft_neg"
    )
    parser.add_argument(
        "--train-on-unlevelled",
        action="store_const",
        const=True,
        default=None,
        help="set train_on_unlevelled: train on the kept-out documents of heads too small "
        "for a level",
    )
    parser.add_argument(
        "--logistic-weight",
        type=float,
        default=None,
        help="override lexical.logistic_weight (0: no tf-idf logistic regression)",
    )
    parser.add_argument("--keep-dropout", action="store_true", help="backbone dropout on")
    parser.add_argument(
        "--no-balance-sources",
        dest="balance_sources",
        action="store_false",
        help="draw rows uniformly instead of every source equally often",
    )
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="no training: evaluate OUTPUT/train/model with OUTPUT/config.yaml",
    )
    parser.add_argument(
        "--eval-max-length", type=int, default=None, help="tokens per text when evaluating"
    )
    parser.add_argument(
        "--refit-after-training",
        action="store_true",
        help="with --evaluate-only: fit the tf-idf regression and the score level again with "
        "this code (and --logistic-weight), on the saved model's trained heads; the joint "
        "steps depend on neither, so this is what training with them would give",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=0,
        help="K document-level folds (each source's documents dealt round them): the config "
        "trained on each, the baselines on the same folds, the spread over folds; finished "
        "folds are reused (OUTPUT/fold-k)",
    )
    parser.add_argument(
        "--compare-with",
        type=Path,
        default=None,
        help="with --folds: the default's fold runs (its OUTPUT); the section then compares "
        "this config with it by docs/btrm.md's rule",
    )
    parser.add_argument(
        "--run-folds",
        type=int,
        nargs="+",
        default=None,
        help="with --folds: train only these folds (default all); the section covers every "
        "finished fold, and a comparison on some folds says whether the rest can change it",
    )
    parser.add_argument("--write", action="store_true", help="update docs/btrm.md")
    args = parser.parse_args()
    if args.run_folds and not all(0 <= k < args.folds for k in args.run_folds):
        parser.error(f"--run-folds: every fold must be in 0..{args.folds - 1} (--folds)")
    require_fasttext()
    if args.evaluate_only:
        evaluate_saved(args)
        return
    if args.folds:
        from _btrm_folds import run_folds

        run_folds(args, raw_config(args))
        return
    args.output.mkdir(parents=True, exist_ok=True)
    config_path = args.output / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw_config(args), sort_keys=False))
    config = load_yaml_config(config_path, BtrmConfig)
    console = Console(width=150)
    started = time.perf_counter()
    ran = run_recipe(btrm_recipe, config, args.output / "train", console)
    results = {head: entry for head, entry in ran.items() if isinstance(entry, dict)}
    minutes = (time.perf_counter() - started) / 60
    timing = orjson.loads((args.output / "train" / "timing.json").read_bytes())
    args.train_minutes = timing["train_seconds"] / 60
    table = build_table(config)  # the same hash split as the reward model's
    baseline = aucs(table, baseline_scores(table))
    fast = aucs(table, fasttext_scores(table, args.seed))
    lines = report_lines(args, results, baseline, minutes) + pair_lines(results, fast, baseline)
    publish(MARK, lines, args.write, DOCS / "btrm.md")


def raw_config(args: argparse.Namespace) -> dict[str, Any]:
    """The default config with the command's overrides, as a YAML-ready dict."""
    raw = default_config(args.data_dir, args.max_steps).model_dump(mode="json")
    raw["trainer"]["progress"] = False
    for dest, path in CONFIG_OVERRIDES.items():
        value = getattr(args, dest)
        if value is not None:
            *parents, key = path
            node = raw
            for name in parents:
                node = node[name]
            node[key] = value
    raw["backbone"]["disable_dropout"] = not args.keep_dropout
    raw["trainer"]["seed"] = args.seed
    raw["balance_sources"] = args.balance_sources
    raw["lexical"]["enabled"] = args.lexical
    return raw


# Flags that override one config key each (argparse dest -> path in the config dict).
CONFIG_OVERRIDES: dict[str, tuple[str, ...]] = {
    "log_square_weight": ("log_square_weight",),
    "log_square_form": ("log_square_form",),
    "max_length": ("backbone", "max_length"),
    "mixed_precision": ("trainer", "mixed_precision"),
    "lexical_lr": ("lexical", "learning_rate"),
    "prefit_epochs": ("lexical", "prefit_epochs"),
    "furthest_weight": ("tier_weights", "furthest_neg"),
    "soft_weight": ("tier_weights", "soft_neg"),
    "logistic_weight": ("lexical", "logistic_weight"),
    "hard_negative_gamma": ("hard_negative_gamma",),
    "train_on_unlevelled": ("train_on_unlevelled",),
}


def override_flags(args: argparse.Namespace) -> str:
    """The given override flags, as they were typed."""
    flags = {dest: getattr(args, dest, None) for dest in CONFIG_OVERRIDES}
    return "".join(
        f" --{dest.replace('_', '-')}" + ("" if value is True else f" {value}")
        for dest, value in flags.items()
        if value is not None
    )


def evaluate_saved(args: argparse.Namespace) -> None:
    """Held-out evaluation of an already trained model, at ``--eval-max-length`` tokens."""
    from termwise.recipes.btrm.after_training import after_training
    from termwise.recipes.btrm.evaluate import evaluate_model
    from termwise.recipes.btrm.model import load_reward_model
    from termwise.recipes.btrm.prepared import at_scoring_length, prepare
    from termwise.recipes.btrm.recipe import training_rows

    config = load_yaml_config(args.output / "config.yaml", BtrmConfig)
    if args.refit_after_training and args.logistic_weight is not None:
        lexical = config.lexical.model_copy(update={"logistic_weight": args.logistic_weight})
        config = config.model_copy(update={"lexical": lexical})
    started = time.perf_counter()
    model, _, _ = load_reward_model(args.output / "train" / "model")
    prepared = prepare(config)
    if args.refit_after_training:
        model.heads.logistic = None
        rows = training_rows(prepared.table, config)
        after_training(model, prepared, config, rows, Console(width=150))
    if args.eval_max_length is not None:  # re-encoded at that length, not read again
        backbone = config.backbone.model_copy(update={"score_max_length": args.eval_max_length})
        config = config.model_copy(update={"backbone": backbone})
    prepared = at_scoring_length(prepared, config)
    results = evaluate_model(model, prepared, config)
    minutes = (time.perf_counter() - started) / 60
    table = build_table(config)
    baseline = aucs(table, baseline_scores(table))
    fast = aucs(table, fasttext_scores(table, args.seed))
    lines = report_lines(args, results, baseline, minutes) + pair_lines(results, fast, baseline)
    publish(MARK, lines, args.write, DOCS / "btrm.md")


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def report_lines(
    args: argparse.Namespace,
    results: dict[str, Any],
    baseline: dict[str, dict[str, float | None]],
    minutes: float,
) -> list[str]:
    timed = (
        "evaluation"
        if args.evaluate_only
        else f"training {args.train_minutes:.1f} min, set-up, training and evaluation"
    )
    lines = [
        "## Multi-head reward model vs fastText and TF-IDF (`bench/btrm_vs_baselines.py`)",
        "",
        f"Command: `.venv/bin/python bench/btrm_vs_baselines.py --data-dir {args.data_dir} "
        f"--max-steps {args.max_steps}"
        + override_flags(args)
        + (" --keep-dropout" if getattr(args, "keep_dropout", False) else "")
        + (f" --seed {args.seed}" if getattr(args, "seed", 0) else "")
        + ("" if getattr(args, "balance_sources", True) else " --no-balance-sources")
        + ("" if getattr(args, "lexical", True) else " --no-lexical")
        + (f" --output {args.output} --evaluate-only" if args.evaluate_only else "")
        + (" --refit-after-training" if args.refit_after_training else "")
        + (f" --eval-max-length {args.eval_max_length}" if args.eval_max_length else "")
        + " --write` (default config: all-MiniLM-L6-v2, LoRA r=16, "
        + ("lexical branch, " if getattr(args, "lexical", True) else "no lexical branch, ")
        + f"batch 32, trained on {args.max_length or 128} tokens; {timed} took {minutes:.1f} "
        "min on 2 CPU cores).",
        "",
        "Goals: AUC >= 0.97 against the semi-firm and furthest negatives; against each "
        "soft-negative source, above the TF-IDF baseline; median positive score in [0.7, 1.3] "
        "and median negative below 0 on every head (held-out documents).",
        "",
        "| head | median positive | median negative | semi_firm (btrm / tfidf) | "
        "furthest (btrm / tfidf) | soft sources where btrm >= tfidf | "
        "worst soft source (btrm / tfidf) |",
        "|---|---|---|---|---|---|---|",
    ]
    unmet: list[str] = []
    for head, entry in results.items():
        ours, theirs = entry["auc"], baseline[head]
        soft = [k for k in ours if k.startswith("soft_neg:") and ours[k] is not None]
        wins = [k for k in soft if ours[k] >= (theirs.get(k) or 0.0)]
        worst = min(soft, key=lambda k: ours[k]) if soft else None
        median, negative = entry["median_positive"], entry.get("median_negative")
        lines.append(
            f"| {head} | {_fmt(median)} | {_fmt(negative)} | {_fmt(ours.get('semi_firm_neg'))} / "
            f"{_fmt(theirs.get('semi_firm_neg'))} | {_fmt(ours.get('furthest_neg'))} / "
            f"{_fmt(theirs.get('furthest_neg'))} | {len(wins)} of {len(soft)} | "
            + (
                f"{worst[9:]}: {_fmt(ours[worst])} / {_fmt(theirs.get(worst))} |"
                if worst
                else "- |"
            )
        )
        for tier in ("semi_firm_neg", "furthest_neg"):
            if ours.get(tier) is not None and ours[tier] < 0.97:
                unmet.append(f"{head} vs {tier} ({ours[tier]:.3f})")
        unmet += [
            f"{head} vs {k[9:]} ({ours[k]:.3f} < {theirs[k]:.3f})"
            for k in soft
            if k not in wins and theirs.get(k) is not None
        ]
        if median is None or not 0.7 <= median <= 1.3:
            unmet.append(f"{head} median positive {_fmt(median)}")
        if negative is None or negative >= 0:
            unmet.append(f"{head} median negative {_fmt(negative)}")
    lines += ["", "Goals not met: " + ("; ".join(unmet) if unmet else "none") + "."]
    return lines


if __name__ == "__main__":
    main()
