"""JSONL files: one streaming reader with ``file:line`` errors.

Every reader in termwise goes through :func:`iter_records` (a bad line names its file and
line). The atomic writers (:func:`atomic_write`, :func:`atomic_directory`) and the output
checks live in :mod:`termwise.data.outputs` and are importable from here too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from termwise.data.outputs import (
    atomic_directory,
    atomic_path,
    atomic_write,
    check_output,
    replace_directory,
    write_bytes_atomic,
    write_json,
)
from termwise.errors import TermwiseUserError

__all__ = [
    "atomic_directory",
    "atomic_path",
    "atomic_write",
    "check_output",
    "check_readable",
    "iter_records",
    "parse_object",
    "record_chunks",
    "replace_directory",
    "require_string_list",
    "require_text",
    "write_bytes_atomic",
    "write_json",
]

TEXT_FIELDS = ("text", "prose", "content", "response")


def parse_object(raw: bytes, path: Path, number: int) -> dict[str, Any]:
    """One JSONL line as an object, or a ``file:line`` error."""
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise TermwiseUserError(_json_problem(raw, error), path=path, line=number) from None
    if not isinstance(row, dict):
        raise TermwiseUserError(
            f"expected a JSON object, got {type(row).__name__}", path=path, line=number
        )
    return row


def _json_problem(raw: bytes, error: orjson.JSONDecodeError) -> str:
    """Why one line is not JSON, with the column in that line (orjson counts lines and
    columns within the line it was given, which the ``file:line`` prefix already names)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return (
            f"not UTF-8 text (byte 0x{raw[bad.start]:02x} at column {bad.start + 1}); "
            "save the file as UTF-8"
        )
    return f"invalid JSON at column {error.colno}: {error.msg}"


def iter_records(
    path: Path, bad: list[str] | None = None
) -> Iterator[tuple[int, dict[str, Any], int]]:
    """``(line number, object, bytes read so far)`` for every non-blank line of ``path``.
    A line that is not a JSON object raises ``file:line: reason``; when a ``bad`` list is
    given, its message is appended there instead and the line skipped (counted, never lost).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "r.jsonl"
    >>> _ = path.write_bytes(b'{"text": "a"}\\n\\n{"text": tru}\\n')
    >>> bad: list[str] = []
    >>> [(line, record) for line, record, _ in iter_records(path, bad)]
    [(1, {'text': 'a'})]
    >>> bad[0].endswith("r.jsonl:3: invalid JSON at column 10: invalid literal, expected 'true'")
    True
    """
    check_readable(path)
    consumed = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            consumed += len(raw)
            if not raw.strip():
                continue
            try:
                record = parse_object(raw, path, number)
            except TermwiseUserError as error:
                if bad is None:
                    raise
                bad.append(str(error))
                continue
            yield number, record, consumed


def check_readable(path: Path, what: str = "file") -> None:
    """A readable regular file, or one line saying what it is instead."""
    if path.is_dir():
        raise TermwiseUserError(f"is a directory, expected a {what}", path=path)
    if not path.exists():
        raise TermwiseUserError(f"{what} not found", path=path)
    if not os.access(path, os.R_OK):
        raise TermwiseUserError(f"{what} is not readable (permissions)", path=path)


def require_text(record: dict[str, Any], name: str, path: Path, line: int) -> str:
    """``record[name]`` as a non-empty string, or ``file:line: name: reason`` saying
    whether it is missing, null, of another type or empty."""
    if name not in record:
        raise TermwiseUserError("missing", path=path, line=line, field=name)
    value = record[name]
    if value is None:
        raise TermwiseUserError("null, expected a string", path=path, line=line, field=name)
    if not isinstance(value, str):
        raise TermwiseUserError(
            f"expected a string, got {type(value).__name__}", path=path, line=line, field=name
        )
    if not value.strip():
        raise TermwiseUserError("empty text", path=path, line=line, field=name)
    return value


def require_string_list(record: dict[str, Any], name: str, path: Path, line: int) -> list[str]:
    """``record[name]`` as a list of strings, or ``file:line: name: reason`` saying whether
    it is missing, null, not a list, or which item is not a string."""
    if name not in record:
        raise TermwiseUserError(
            "missing (expected a list of strings)", path=path, line=line, field=name
        )
    value = record[name]
    if value is None:
        raise TermwiseUserError(
            "null, expected a list of strings", path=path, line=line, field=name
        )
    if not isinstance(value, list):
        raise TermwiseUserError(
            f"expected a list of strings, got {type(value).__name__}",
            path=path,
            line=line,
            field=name,
        )
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise TermwiseUserError(
                f"expected a string, got {type(item).__name__}",
                path=path,
                line=line,
                field=f"{name}[{index}]",
            )
    return value


def record_chunks(path: Path, size: int) -> Iterator[tuple[list[tuple[int, dict[str, Any]]], int]]:
    """Records with their line numbers, ``size`` at a time, and the bytes read so far."""
    chunk: list[tuple[int, dict[str, Any]]] = []
    consumed = 0
    for number, record, consumed in iter_records(path):
        chunk.append((number, record))
        if len(chunk) == size:
            yield chunk, consumed
            chunk = []
    if chunk:
        yield chunk, consumed
