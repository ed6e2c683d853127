"""What the multi-head reward model misses on its hardest pairs, per fold.

Reads the folds ``bench/btrm_vs_baselines.py --folds K --output OUTPUT`` trained and, on each
fold's held-out rows, splits every score into its parts: the backbone's linear heads, the
lexical branch (trained with them) and the tf-idf regression (fitted after), then the sum as
the model scores it (capped, levelled; ranking-equivalent to the uncapped sum). For every
pair the model trails fastText on (by more than 0.005), the AUC of each part alone and of
the sums, and per held-out document of the negative source: how many of the head's
positive rows it outscores (a pair lost to one document reads differently from one lost
to all of them). The part scores are cached in ``OUTPUT/fold-k/parts.npz``.

    .venv/bin/python bench/btrm_hard_pairs.py --output runs/btrm-folds [--examples 2] [--write]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch

from _doc import DOCS, publish
from termwise.config import load_yaml_config
from termwise.data.batching import map_batches, pad
from termwise.models.backbone import pool
from termwise.models.lexical import pack_bags
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import TIER_NAMES, MembershipTable, build_table
from termwise.recipes.btrm.evaluate import source_name
from termwise.recipes.btrm.score import encode, load

MARK = "<!-- btrm_hard_pairs -->"
MARGIN = 0.005
PARTS = ("neural", "lexical", "logistic")


def part_scores(model_dir: Path, texts: list[str]) -> dict[str, np.ndarray]:
    """``[texts, heads]`` per part of the score, and the level (scale, offset)."""
    scorer = load(model_dir, merge=True)
    model, manifest = scorer.model, scorer.manifest
    ids = encode(scorer.tokenizer, manifest.meta_prompt, texts, manifest.max_length)
    bags = model.bags(texts)
    heads = model.heads
    pad_id = scorer.tokenizer.pad_token_id or 0

    def run(rows: list[int]) -> torch.Tensor:
        input_ids, mask = pad([ids[i] for i in rows], pad_id)
        pooled = pool(
            model.backbone(input_ids=input_ids, attention_mask=mask).last_hidden_state,
            mask,
            model.pooling,
        )
        parts = [heads.linear(heads.norm(pooled.float()))]
        zeros = torch.zeros_like(parts[0])
        if bags is not None and heads.lexical is not None:
            bag_ids, offsets = pack_bags([bags[i] for i in rows])
            parts.append(heads.lexical(bag_ids, offsets))
            logistic = heads.logistic
            parts.append(zeros if logistic is None else logistic(bag_ids, offsets))
        else:
            parts += [zeros, zeros]
        return torch.cat(parts, dim=1)

    with torch.inference_mode():
        joined = map_batches([len(row) for row in ids], run, 32, 4096).numpy()
    n = len(model.head_names)
    out = {name: joined[:, k * n : (k + 1) * n] for k, name in enumerate(PARTS)}
    level = model.level
    out["level"] = (
        np.stack([np.ones(n), np.zeros(n)]) if level is None else level.numpy().astype(float)
    )
    return out


def fold_parts(fold_dir: Path, table: MembershipTable) -> dict[str, np.ndarray]:
    cache = fold_dir / "parts.npz"
    rows = table.split(heldout=True)
    if cache.is_file():
        saved = dict(np.load(cache, allow_pickle=False))
        if np.array_equal(saved["rows"], rows):
            return saved
    parts = part_scores(fold_dir / "train" / "model", [table.texts[i] for i in rows])
    parts["rows"] = rows
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **parts)
    tmp.replace(cache)
    return parts


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(positive > negative), ties half."""
    above = (positive[:, None] > negative[None, :]).mean()
    ties = (positive[:, None] == negative[None, :]).mean()
    return float(above + ties / 2)


def pair_masks(table: MembershipTable, rows: np.ndarray, h: int, key: str) -> np.ndarray:
    tier_name, source = key.split(":", 1)
    code = next(c for c, name in TIER_NAMES.items() if name == tier_name)
    names = np.array([source_name(s) for s in table.source[rows]])
    return (table.negative_tier[rows, h] == code) & (names == source)


def hard_pairs(fold: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (head, key)
        for head, entry in fold["btrm"].items()
        for key, ours in entry["auc"].items()
        if ":" in key
        and ours is not None
        and fold["fasttext"][head].get(key) is not None
        and ours < fold["fasttext"][head][key] - MARGIN
    ]


def fold_lines(
    k: int,
    fold: dict[str, Any],
    table: MembershipTable,
    parts: dict[str, np.ndarray],
    examples: int,
) -> list[str]:
    rows = parts["rows"]
    lines: list[str] = []
    for head, key in hard_pairs(fold):
        h = table.heads.index(head)
        positive = table.positive[rows, h]
        negative = pair_masks(table, rows, h, key)
        neural, lexical, logistic = (parts[name][:, h] for name in PARTS)
        combos = {
            "neural": neural,
            "lexical branch": lexical,
            "regression": logistic,
            "neural + branch": neural + lexical,
            "all (the model)": neural + lexical + logistic,
        }
        cells = " / ".join(f"{auc(v[positive], v[negative]):.3f}" for v in combos.values())
        total = combos["all (the model)"]
        documents = table.group[rows][negative]
        per_document = []
        for document in np.unique(documents):
            scores = total[negative][documents == document]
            won = float(np.mean(total[positive][:, None] < scores[None, :]))
            per_document.append((won, document, len(scores)))
        per_document.sort(reverse=True)
        worst = ", ".join(f"{d.split('|')[-1]} {w:.2f} ({n} rows)" for w, d, n in per_document[:3])
        lines.append(
            f"| {k} | {head} | {key} | {fold['btrm'][head]['auc'][key]:.3f} | "
            f"{fold['fasttext'][head][key]:.3f} | {cells} | {len(per_document)} | {worst} |"
        )
        for row in np.argsort(-total[negative])[:examples]:
            text = table.texts[rows[negative][row]]
            lines.append(
                f"|  |  | top negative | {total[negative][row]:+.2f} | | "
                f"{' '.join(text.split())[:160]} | | |"
            )
    return lines


# Candidates fixed before the replay (docs/btrm.md, the rule): the regression's weight per
# head, as a function of the head's positive training documents.
FEW_DOCUMENTS = 100  # Brown heads have 18-60 on the full corpora, the others over 1,000
CANDIDATES = {
    "default (weight 1 on every head)": lambda documents: 1.0,
    f"no regression on heads with < {FEW_DOCUMENTS} training documents": lambda documents: (
        0.0 if documents < FEW_DOCUMENTS else 1.0
    ),
    "weight 0.5 on every head": lambda documents: 0.5,
    "no regression": lambda documents: 0.0,
}


def training_documents(table: MembershipTable) -> list[int]:
    rows = table.split(heldout=False)
    return [
        len(np.unique(table.group[rows][table.positive[rows, h]])) for h in range(len(table.heads))
    ]


def replay(
    fold: dict[str, Any], table: MembershipTable, parts: dict[str, np.ndarray], logistic: np.ndarray
) -> dict[str, Any]:
    """Pairs behind each baseline and the mean AUC with ``logistic`` (``[rows, heads]``) as
    the regression's part of the held-out rows' scores."""
    rows = parts["rows"]
    behind = {"fasttext": 0, "tfidf": 0}
    ours_all: list[float] = []
    for h, head in enumerate(table.heads):
        total = parts["neural"][:, h] + parts["lexical"][:, h] + logistic[:, h]
        positive = table.positive[rows, h]
        for key in fold["btrm"][head]["auc"]:
            fast, tfidf = fold["fasttext"][head].get(key), fold["tfidf"][head].get(key)
            if ":" not in key or fast is None or tfidf is None:
                continue
            negative = pair_masks(table, rows, h, key)
            ours = auc(total[positive], total[negative])
            ours_all.append(ours)
            behind["fasttext"] += ours < fast - MARGIN
            behind["tfidf"] += ours < tfidf - MARGIN
    return {**behind, "mean": float(np.mean(ours_all))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("runs/btrm-folds"))
    parser.add_argument("--examples", type=int, default=1, help="top negatives shown per pair")
    parser.add_argument("--write", action="store_true", help="update docs/btrm.md")
    args = parser.parse_args()
    lines = [
        "## The pairs the model trails fastText on, part by part (`bench/btrm_hard_pairs.py`)",
        "",
        f"Command: `.venv/bin/python bench/btrm_hard_pairs.py --output {args.output} "
        f"--examples {args.examples}{' --write' if args.write else ''}` (after the folds above). "
        "AUC of each part of the score alone, then of the sums; then the held-out documents of "
        "the negative source and the three that outscore the largest share of the head's "
        "held-out positive rows.",
        "",
        "| fold | head | negative | model | fastText | AUC: neural / lexical branch / "
        "regression / neural + branch / all | negative documents | most confused (share of "
        "positives outscored) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    replayed: dict[str, list[dict[str, Any]]] = {name: [] for name in CANDIDATES}
    for fold_dir in sorted(args.output.glob("fold-*")):
        done = fold_dir / "fold.json"
        if not done.is_file():
            continue
        fold = orjson.loads(done.read_bytes())
        config = load_yaml_config(fold_dir / "config.yaml", BtrmConfig)
        table = build_table(config)
        parts = fold_parts(fold_dir, table)
        lines += fold_lines(int(fold_dir.name.split("-")[1]), fold, table, parts, args.examples)
        documents = training_documents(table)
        for name, weight_of in CANDIDATES.items():
            weights = np.array([weight_of(count) for count in documents])
            replayed[name].append(replay(fold, table, parts, weights * parts["logistic"]))
    lines += [
        "",
        "The regression's weight per head, replayed on the trained fold models (the joint "
        "steps do not depend on it; ranking only, so the level is not replayed). Per fold: "
        "pairs behind fastText / behind TF-IDF (by more than 0.005) / mean AUC.",
        "",
        "| candidate | "
        + " | ".join(f"fold {k}" for k in range(len(replayed["no regression"])))
        + " | behind fastText, summed |",
        "|---|" + "---|" * (len(replayed["no regression"]) + 1),
    ]
    for name, results in replayed.items():
        cells = " | ".join(f"{r['fasttext']} / {r['tfidf']} / {r['mean']:.4f}" for r in results)
        lines.append(f"| {name} | {cells} | {sum(r['fasttext'] for r in results)} |")
    publish(MARK, lines, args.write, DOCS / "btrm.md")


if __name__ == "__main__":
    main()
