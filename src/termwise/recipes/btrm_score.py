"""Streaming scoring of a JSONL file with a saved multi-head reward model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from termwise.btrm import SCORE_TOKENS, load
from termwise.data.jsonl import TEXT_FIELDS, parse_object
from termwise.errors import TermwiseUserError


def _chunks(path: Path, size: int) -> Iterator[tuple[list[tuple[int, dict[str, Any]]], int]]:
    """Records (with their line numbers) ``size`` at a time, and the bytes read so far."""
    chunk: list[tuple[int, dict[str, Any]]] = []
    consumed = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            consumed += len(raw)
            if not raw.strip():
                continue
            chunk.append((number, parse_object(raw, path, number)))
            if len(chunk) == size:
                yield chunk, consumed
                chunk = []
    if chunk:
        yield chunk, consumed


def _text(record: dict[str, Any], field: str, path: Path, line: int) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value.strip():
        reason = "missing" if field not in record else "expected a non-empty string"
        raise TermwiseUserError(reason, path=path, line=line, field=field)
    return value


def score_file(
    model_dir: Path,
    input_path: Path,
    output: Path,
    text_field: str,
    batch_size: int,
    chunk: int,
    console: Console,
    bf16: bool = False,
    max_tokens: int | None = SCORE_TOKENS,
) -> int:
    """Score every record of ``input_path`` into ``output`` (order preserved); returns the
    number of records. Texts are batched by length within each chunk."""
    if not input_path.is_file():
        raise TermwiseUserError("input file not found", path=input_path)
    scorer = load(model_dir, bf16=bf16)
    field = None if text_field == "auto" else text_field
    written = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    columns = (TextColumn("scoring"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with output.open("wb") as sink, Progress(*columns, console=console) as progress:
        task = progress.add_task("score", total=input_path.stat().st_size)
        for records, consumed in _chunks(input_path, chunk):
            if field is None:
                first = records[0][1]
                field = next((f for f in TEXT_FIELDS if f in first), None)
                if field is None:
                    raise TermwiseUserError(
                        f"no text field (tried {', '.join(TEXT_FIELDS)}); pass --text-field",
                        path=input_path,
                        line=records[0][0],
                    )
            texts = [_text(r, field, input_path, line) for line, r in records]
            scores = scorer.score_tensor(texts, batch_size, max_tokens).tolist()
            for (_, record), row in zip(records, scores, strict=True):
                record["scores"] = dict(zip(scorer.heads, row, strict=True))
                sink.write(orjson.dumps(record) + b"\n")
            written += len(records)
            progress.update(task, completed=consumed)
    return written
