"""``termwise pref score``: add preference probabilities or rewards to JSONL records.

A record is a pair (``prompt`` + ``chosen``/``rejected``, or ``prompt`` + ``a``/``b``), which
gets ``{"preference": {"p": P(first > second), "std": ...}}``; or, for a ``bt`` model, a
single response (``prompt`` + ``response``), which gets ``{"reward": r}``. Records are read,
scored and written in chunks; the output keeps the input order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from termwise.data.jsonl import parse_object
from termwise.errors import TermwiseUserError
from termwise.pref import PreferenceScorer, load

PAIR_FIELDS = (("chosen", "rejected"), ("a", "b"))


def _kind(row: dict[str, Any], path: Path, line: int, head: str) -> tuple[str, tuple[str, ...]]:
    prompt = row.get("prompt")
    if not isinstance(prompt, str):
        raise TermwiseUserError("missing or not a string", path=path, line=line, field="prompt")
    for first, second in PAIR_FIELDS:
        if first in row or second in row:
            fields: tuple[str, ...] = (first, second)
            break
    else:
        if "response" not in row:
            raise TermwiseUserError("needs chosen/rejected, a/b, or response", path=path, line=line)
        if head != "bt":
            raise TermwiseUserError(
                f"a single response needs a bt model (this one is {head})",
                path=path,
                line=line,
                field="response",
            )
        fields = ("response",)
    for name in fields:
        if not isinstance(row.get(name), str) or not row[name].strip():
            raise TermwiseUserError("missing or empty", path=path, line=line, field=name)
    return ("pair" if len(fields) == 2 else "single"), fields


def _chunks(path: Path, size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    chunk: list[tuple[int, dict[str, Any]]] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                chunk.append((number, parse_object(raw, path, number)))
            if len(chunk) == size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _score_chunk(
    scorer: PreferenceScorer, rows: list[tuple[int, dict[str, Any]]], path: Path, batch_size: int
) -> None:
    pairs: list[tuple[dict[str, Any], tuple[str, ...]]] = []
    singles: list[dict[str, Any]] = []
    for line, row in rows:
        kind, fields = _kind(row, path, line, scorer.head)
        if kind == "pair":
            pairs.append((row, fields))
        else:
            singles.append(row)
    if pairs:
        p, std = scorer.probability(
            [r["prompt"] for r, _ in pairs],
            [r[f[0]] for r, f in pairs],
            [r[f[1]] for r, f in pairs],
            batch_size=batch_size,
        )
        for (row, _), value, spread in zip(pairs, p, std, strict=True):
            row["preference"] = {"p": float(value), "std": float(spread)}
    if singles:
        rewards = scorer.reward(
            [r["prompt"] for r in singles], [r["response"] for r in singles], batch_size
        )
        for row, reward in zip(singles, rewards, strict=True):
            row["reward"] = float(reward)


def score_file(
    model: Path, input_path: Path, output: Path, batch_size: int = 32, chunk: int = 1024
) -> int:
    """Score every record of ``input_path`` into ``output``; returns the record count.
    The output is written to a temporary file and renamed at the end, so a bad record
    never leaves a half-written output behind."""
    if not input_path.is_file():
        raise TermwiseUserError("file not found", path=input_path)
    scorer = load(model)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    count = 0
    try:
        with partial.open("wb") as handle:
            for rows in _chunks(input_path, chunk):
                _score_chunk(scorer, rows, input_path, batch_size)
                handle.writelines(orjson.dumps(row) + b"\n" for _, row in rows)
                count += len(rows)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(output)
    return count
