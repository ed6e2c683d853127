"""``termwise vae eval``: a saved model on any JSONL file of sentences or documents."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from termwise.data.jsonl import iter_records
from termwise.errors import TermwiseUserError
from termwise.recipes.vae.config import CRITERION, VaeConfig
from termwise.recipes.vae.data import encode_texts, read_examples
from termwise.recipes.vae.metrics import Weights, diagnose_split
from termwise.recipes.vae.model import load_vae


def evaluate_file(
    model_dir: Path, path: Path, samples: int, console: Console | None = None
) -> dict[str, Any]:
    """Every example of ``path`` (a {sentences: [...]} document, or a text per line)."""
    model, vocab, manifest = load_vae(model_dir)
    first = next(iter_records(path), None)
    documents = first is not None and "sentences" in first[1]
    config = VaeConfig.model_validate(
        {
            "task": manifest.task,
            "data": {
                ("sequences" if documents else "corpora"): [path],
                "max_tokens": manifest.max_tokens,
            },
        }
    )
    examples = read_examples(config)
    if not examples:
        raise TermwiseUserError("no sentences to evaluate", path=path)
    ids, lengths = encode_texts(vocab, [e.text for e in examples], manifest.max_tokens)
    labels = torch.tensor(
        [
            manifest.label_names.index(e.label) if e.label in manifest.label_names else 0
            for e in examples
        ]
    )
    weights = Weights(kl=1.0, teacher=0.0, free_bits=manifest.free_bits)
    passes = 2 if manifest.task == "reconstruct" and samples else 1
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(f"evaluating ({samples} importance samples)", total=len(ids) * passes)
        metrics = diagnose_split(
            model,
            ids,
            lengths,
            labels,
            torch.zeros(len(ids), 0),
            weights,
            manifest.reduce,
            torch.Generator().manual_seed(0),
            samples,
            advance=lambda n: bar.advance(task, n),
        )
    return {"examples": len(ids), **metrics}


def print_metrics(results: dict[str, Any], console: Console, title: str) -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value")
    for name, value in results.items():
        table.add_row(name, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


def check_success(criteria: dict[str, str], metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each criterion (``"val_nll": "< 4.8"``) against the metrics: value, passed."""
    outcome: dict[str, dict[str, Any]] = {}
    for name, rule in criteria.items():
        match = CRITERION.match(rule)
        assert match is not None  # validated in the config
        value = metrics.get(name)
        passed = value is not None and OPERATORS[match.group(1)](value, float(match.group(2)))
        outcome[name] = {"rule": rule.strip(), "value": value, "passed": bool(passed)}
    return outcome


def print_success(outcome: dict[str, dict[str, Any]], console: Console) -> None:
    if not outcome:
        return
    table = Table(title="Success criteria (best model, val)")
    for column in ("metric", "criterion", "value", "result"):
        table.add_column(column)
    for name, entry in outcome.items():
        value = "missing" if entry["value"] is None else f"{entry['value']:.4g}"
        table.add_row(name, entry["rule"], value, "pass" if entry["passed"] else "FAIL")
    console.print(table)
