"""Corpus scoring, measured side by side in one run on the same cores.

1. The scorer's texts/s against the backbone's raw forward pass on the same batches (the
   scorer's own length-bucketed, padded shapes; no tokenising, no heads, no lexical branch):
   at 128 and 256 tokens, goal >= 0.9.
2. ``termwise btrm score`` on a folder on Ray Data with 2 actors (1 thread each, a local
   cluster) against ``btrm score`` file by file in one process (2 threads): goal >= 0.9.
3. ``--int8`` (dynamic int8 backbone) against float32: speed-up (goal >= 1.8x), the
   largest score change, and the change of the mean held-out AUC over every head and
   negative set on the run's own held-out rows (goal <= 0.002).

The model is a trained btrm run's (``make run`` writes ``runs/btrm/train``): all-MiniLM-L6-v2
with LoRA, the lexical branch and the tf-idf regression. Arms alternate block by block;
medians are reported.

    .venv/bin/python bench/btrm_corpus.py [--run runs/btrm/train] [--blocks 3] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import orjson
import torch

from _doc import publish
from termwise.data.batching import length_batches, pad
from termwise.recipes.btrm.score import SCORE_TOKENS, encode, load, score_file

MARK = "<!-- btrm_corpus -->"
CORPORA = Path(__file__).resolve().parents[1] / "data" / "corpora"


def corpus_texts(limit: int) -> list[str]:
    texts: list[str] = []
    for path in sorted(CORPORA.glob("*.jsonl")):
        texts += [orjson.loads(line)["text"] for line in path.read_bytes().splitlines()]
    return texts[:limit]


def raw_forward_seconds(scorer, texts: list[str], length: int) -> float:  # type: ignore[no-untyped-def]
    """The backbone alone over the batches the scorer makes of ``texts`` at ``length``."""
    manifest = scorer.manifest
    ids = encode(scorer.tokenizer, manifest.meta_prompt, texts, length)
    pad_id = scorer.tokenizer.pad_token_id or 0
    batches = [
        pad([ids[i] for i in rows], pad_id)
        for rows in length_batches([len(r) for r in ids], 64, SCORE_TOKENS)
    ]
    backbone = scorer.model.backbone
    started = time.perf_counter()
    with torch.inference_mode():
        for input_ids, mask in batches:
            backbone(input_ids=input_ids, attention_mask=mask)
    return time.perf_counter() - started


def scorer_seconds(scorer, texts: list[str]) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    scorer.score_tensor(texts)
    return time.perf_counter() - started


def at_length(scorer, length: int):  # type: ignore[no-untyped-def]
    scorer.manifest = scorer.manifest.model_copy(update={"max_length": length})
    return scorer


def speed_rows(model: Path, texts: list[str], blocks: int) -> tuple[list[str], dict[str, float]]:
    """Scorer vs raw forward, and int8 vs float32, at 128 and 256 tokens."""
    fp32, int8 = load(model), load(model, int8=True)
    rows, found = [], {}
    for length in (128, 256):
        at_length(fp32, length), at_length(int8, length)
        times: dict[str, list[float]] = {"raw": [], "scorer": [], "int8": []}
        scorer_seconds(fp32, texts[:32]), scorer_seconds(int8, texts[:32])  # warm up
        for _ in range(blocks):
            times["raw"].append(raw_forward_seconds(fp32, texts, length))
            times["scorer"].append(scorer_seconds(fp32, texts))
            times["int8"].append(scorer_seconds(int8, texts))
        rate = {arm: len(texts) / statistics.median(t) for arm, t in times.items()}
        change = (fp32.score_tensor(texts) - int8.score_tensor(texts)).abs().max().item()
        found[f"scorer_raw_{length}"] = rate["scorer"] / rate["raw"]
        found[f"int8_{length}"] = rate["int8"] / rate["scorer"]
        rows += [
            f"| raw backbone forward at {length} tokens, the scorer's batches (texts/s) | "
            f"{rate['raw']:.1f} | |",
            f"| `termwise.btrm` scorer at {length} tokens (texts/s) | {rate['scorer']:.1f} | |",
            f"| scorer / raw forward at {length} tokens | {found[f'scorer_raw_{length}']:.2f} | "
            f">= 0.9: {'met' if found[f'scorer_raw_{length}'] >= 0.9 else 'NOT met'} |",
            f"| `--int8` scorer at {length} tokens (texts/s) | {rate['int8']:.1f} | |",
            f"| `--int8` / float32 at {length} tokens (largest score change {change:.3f}) | "
            f"{found[f'int8_{length}']:.2f}x | >= 1.8x: "
            f"{'met' if found[f'int8_{length}'] >= 1.8 else 'NOT met'} |",
        ]
    return rows, found


def auc_change(run: Path) -> float:
    """Mean held-out AUC with --int8 minus float32's, on the run's own held-out rows."""
    from termwise.config import load_yaml_config
    from termwise.recipes.btrm.config import BtrmConfig
    from termwise.recipes.btrm.evaluate import evaluate_model
    from termwise.recipes.btrm.prepared import at_scoring_length, prepare
    from termwise.recipes.btrm.recipe import key_metric

    config = load_yaml_config(run / "config.yaml", BtrmConfig)
    prepared = at_scoring_length(prepare(config), config)
    means = []
    for int8 in (False, True):
        model = load(run / "model", int8=int8).model
        found = key_metric(evaluate_model(model, prepared, config))
        assert found is not None
        means.append(found["value"])
    return means[1] - means[0]


def write_shards(folder: Path, texts: list[str], shards: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for s in range(shards):
        path = folder / f"shard{s:02d}.jsonl"
        part = texts[s::shards]
        path.write_bytes(
            b"".join(orjson.dumps({"id": i, "text": t}) + b"\n" for i, t in enumerate(part))
        )
        paths.append(path)
    return paths


def engine_ratio(model: Path, texts: list[str], blocks: int) -> tuple[float, float, float]:
    """texts/s of the corpus path on Ray (2 actors) and of btrm score file by file."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray
    from rich.console import Console

    from termwise.recipes.btrm.corpus import CorpusSettings, score_corpus

    quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rates: dict[str, list[float]] = {"ray": [], "single": []}
    with tempfile.TemporaryDirectory() as tmp:
        shards = write_shards(Path(tmp) / "corpus", texts, 8)
        for block in range(blocks):
            torch.set_num_threads(2)
            started = time.perf_counter()
            for shard in shards:
                score_file(
                    model, shard, Path(tmp) / f"single{block}" / shard.name, "auto", 64, 2048, quiet
                )
            rates["single"].append(len(texts) / (time.perf_counter() - started))
            started = time.perf_counter()
            score_corpus(
                model,
                Path(tmp) / "corpus",
                Path(tmp) / f"ray{block}",
                CorpusSettings(actors=2),
                quiet,
            )
            rates["ray"].append(len(texts) / (time.perf_counter() - started))
    ray.shutdown()
    ray_rate, single = statistics.median(rates["ray"]), statistics.median(rates["single"])
    return ray_rate / single, ray_rate, single


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/btrm/train"))
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--texts", type=int, default=256, help="texts for the speed rows")
    parser.add_argument("--corpus-texts", type=int, default=1024, help="texts for Ray vs file")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if not (args.run / "model").is_dir():
        raise SystemExit(f"{args.run}/model not found: `make run` trains one")
    torch.set_num_threads(2)
    texts = corpus_texts(args.texts)
    rows, _ = speed_rows(args.run / "model", texts, args.blocks)
    delta = auc_change(args.run)
    corpus = corpus_texts(args.corpus_texts)
    ratio, ray_rate, single = engine_ratio(args.run / "model", corpus, args.blocks)
    lines = [
        "## Corpus scoring (`bench/btrm_corpus.py`)",
        "",
        f"Command: `.venv/bin/python bench/btrm_corpus.py --run {args.run} --blocks "
        f"{args.blocks} --texts {args.texts} --corpus-texts {args.corpus_texts} --write`",
        f"Machine: {platform.machine()}, torch {torch.__version__}, 2 threads. The trained "
        "`make run` model (all-MiniLM-L6-v2 + LoRA, lexical branch, tf-idf regression), "
        f"{len(texts)} bundled texts ({len(corpus)} in 8 shards for Ray vs file by file).",
        "",
        "| measurement | value | goal |",
        "|---|---|---|",
        *rows,
        f"| mean held-out AUC change with `--int8` | {delta:+.4f} | |<= 0.002|: "
        f"{'met' if abs(delta) <= 0.002 else 'NOT met'} |",
        f"| `btrm score` file by file, 1 process, 2 threads (texts/s) | {single:.1f} | |",
        f"| `btrm score` on the folder, Ray Data, 2 actors x 1 thread (texts/s) | "
        f"{ray_rate:.1f} | |",
        f"| Ray / file by file, same 2 cores | {ratio:.2f} | >= 0.9: "
        f"{'met' if ratio >= 0.9 else 'NOT met'} |",
        "",
        f"Medians of {args.blocks} interleaved blocks. The Ray arm includes starting its "
        "2 actors (each loads the model) on an already running local cluster; 8 shards.",
    ]
    publish(MARK, lines, args.write)


if __name__ == "__main__":
    main()
