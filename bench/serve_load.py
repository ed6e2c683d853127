"""`termwise serve` under load: 1,000 requests from 8 concurrent clients on loopback,
with dynamic batching and with one request per forward pass, side by side in one run.

    python bench/serve_load.py [--requests 1000] [--clients 8] [--write]

The model is a btrm reward model on the default backbone (all-MiniLM-L6-v2, LoRA r 16,
three heads; untrained: speed does not depend on the weights), served by `termwise serve`
in a subprocess. Each request carries one text, as an RLHF trainer scoring rollouts one
by one would send: a short one (a sentence) and a long one (a document, cut by the model
at 256 tokens). Reports errors, p50/p99 latency and throughput for both servers.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from _doc import publish

MARK = "<!-- serve_load -->"
DATA = Path(__file__).resolve().parents[1] / "data" / "corpora"
TERMWISE = str(Path(sys.executable).with_name("termwise"))


def default_model(directory: Path) -> Path:
    from transformers import AutoTokenizer

    from termwise.models.backbone import (
        apply_lora,
        default_pooling,
        load_backbone,
        resolve_backbone,
    )
    from termwise.recipes.btrm.model import MultiHeadRewardModel, save_reward_model

    path = resolve_backbone(None)
    backbone, config = load_backbone(path)
    backbone = apply_lora(backbone, config.model_type, r=16, alpha=32, dropout=0.0, targets=None)
    model = MultiHeadRewardModel(
        backbone, config.hidden_size, ["fiction", "news", "reviews"], default_pooling("bert"), 10.0
    )
    manifest = {"backbone_path": str(path), "meta_prompt": "", "max_length": 256}
    save_reward_model(model.eval(), AutoTokenizer.from_pretrained(path), directory, manifest)
    return directory


def texts(count: int, kind: str) -> list[str]:
    """``document``: corpus texts (cut at 1,500 characters; the model reads 256 tokens);
    ``sentence``: the first sentence of each (a short RLHF response)."""
    pool = [
        json.loads(line)["text"]
        for path in sorted(DATA.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    if kind == "sentence":
        pool = [text.split(". ")[0][:200] for text in pool]
    return [pool[i % len(pool)][:1500] for i in range(count)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def load(model: Path, batching: bool, queries: list[str], clients: int) -> dict[str, float]:
    port = free_port()
    command = [TERMWISE, "serve", "-m", str(model), "--port", str(port), "--head", "news"]
    server = subprocess.Popen(
        command + ([] if batching else ["--no-batching"]),
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        for text in queries[:16]:  # warm-up
            httpx.post(url + "/get_reward", json={"query": [text]}, timeout=60)

        local = threading.local()  # one keep-alive connection per client thread

        def one(text: str) -> tuple[float, bool]:
            if not hasattr(local, "client"):
                local.client = httpx.Client(timeout=120)
            started = time.perf_counter()
            try:
                answer = local.client.post(url + "/get_reward", json={"query": [text]})
                ok = answer.status_code == 200 and len(answer.json()["rewards"]) == 1
            except httpx.HTTPError:
                ok = False
            return time.perf_counter() - started, ok

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(one, queries))
        wall = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=60)
    latency = np.array([r[0] for r in results])
    return {
        "errors": sum(not r[1] for r in results),
        "p50_ms": 1000 * float(np.percentile(latency, 50)),
        "p99_ms": 1000 * float(np.percentile(latency, 99)),
        "per_second": len(queries) / wall,
        "wall_s": wall,
    }


def forward_ceiling(model: Path, queries: list[str], size: int = 8) -> float:
    """Texts per second in batches of ``size`` over texts one at a time, scored directly
    (no server): the most any batching can give on this machine."""
    from termwise.btrm import load as load_reward

    scorer = load_reward(model)
    scorer.score_tensor(queries[:size])  # warm-up
    sample = queries[: 8 * size]
    started = time.perf_counter()
    for text in sample:
        scorer.score_tensor([text])
    alone = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(0, len(sample), size):
        scorer.score_tensor(sample[i : i + size])
    return alone / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    results, ceilings = {}, {}
    with tempfile.TemporaryDirectory(prefix="serve_load_") as tmp:
        model = default_model(Path(tmp) / "model")
        for kind in ("sentence", "document"):
            queries = texts(args.requests, kind)
            ceilings[kind] = forward_ceiling(model, queries)
            for batching in (False, True):
                results[kind, batching] = load(model, batching, queries, args.clients)
    rows, verdicts = [], []
    for kind in ("sentence", "document"):
        for batching in (False, True):
            r = results[kind, batching]
            name = "dynamic batching" if batching else "one request per forward pass"
            rows.append(
                f"| {kind} | {name} | {r['errors']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
                f"{r['per_second']:.1f} | {r['wall_s']:.1f} |"
            )
        ratio = results[kind, True]["per_second"] / results[kind, False]["per_second"]
        verdicts.append(
            f"- {kind}s: dynamic batching gives {ratio:.2f}x the throughput of one request per "
            f"forward pass (goal >= 3x: {'met' if ratio >= 3 else 'NOT met'}); scoring 8 "
            f"texts in one forward pass is {ceilings[kind]:.2f}x faster per text than one at "
            "a time on this machine (no server), the most batching can give here"
        )
    lines = [
        "## `termwise serve` under load",
        "",
        f"`python bench/serve_load.py --requests {args.requests} --clients {args.clients} "
        "--write` (2 CPU cores, server and clients on the same machine). A btrm model on "
        f"all-MiniLM-L6-v2 (LoRA, 3 heads); {args.requests} `POST /get_reward` requests of one "
        f"text each from {args.clients} concurrent clients on loopback, per text kind and "
        "server, all in one run. Sentences: the first sentence of each bundled corpus "
        "document (~25 tokens); documents: the documents (the model reads up to 256 tokens).",
        "",
        "| texts | server | errors | p50 ms | p99 ms | requests/s | wall s |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        *verdicts,
    ]
    publish(MARK, lines, args.write)


if __name__ == "__main__":
    main()
