"""JSONL files: one streaming reader with ``file:line`` errors, and the atomic writers.

Every reader in termwise goes through :func:`iter_records` (a bad line names its file and
line), every output file through :func:`atomic_write` (a temporary beside the target,
renamed into place only when complete: an interrupted or failed run never leaves a
half-written file that looks finished, and never truncates what was there) and every
output folder (a saved model, a checkpoint) through :func:`atomic_directory`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from termwise.errors import TermwiseUserError

TEXT_FIELDS = ("text", "prose", "content", "response")


def parse_object(raw: bytes, path: Path, number: int) -> dict[str, Any]:
    """One JSONL line as an object, or a ``file:line`` error."""
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise TermwiseUserError(f"invalid JSON ({error})", path=path, line=number) from None
    if not isinstance(row, dict):
        raise TermwiseUserError(
            f"expected a JSON object, got {type(row).__name__}", path=path, line=number
        )
    return row


def iter_records(
    path: Path, bad: list[str] | None = None
) -> Iterator[tuple[int, dict[str, Any], int]]:
    """``(line number, object, bytes read so far)`` for every non-blank line of ``path``.
    A line that is not a JSON object raises ``file:line: reason``; when a ``bad`` list is
    given, its message is appended there instead and the line skipped (counted, never lost).
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


def check_output(
    path: Path,
    *inputs: Path,
    option: str = "--output",
    force: bool = False,
    own: Callable[[Path], bool] | None = None,
) -> None:
    """Refuse, before any work, an output that could not be written or would replace
    something the user has: a directory, a path under a file or under a read-only folder,
    an input (a file the command reads, or a path inside an input directory such as the
    model), or an existing file, unless ``force`` or ``own(path)`` says the file is this
    command's own previous output."""
    if path.is_dir():
        raise TermwiseUserError(f"{option} is a directory, expected a file path", path=path)
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise TermwiseUserError(f"{option}: {parent} is a file, not a directory", path=path)
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise TermwiseUserError(f"{option}: cannot write in {parent} (permissions)", path=path)
    target = path.resolve()
    for source in inputs:
        if not source.exists():
            continue
        source = source.resolve()
        if target == source:
            what = "the input file" if source.is_file() else "an input"
            raise TermwiseUserError(f"{option} is {what}; write to another path", path=path)
        if source.is_dir() and source in target.parents:
            raise TermwiseUserError(
                f"{option} is inside {source}, which this command reads; write elsewhere",
                path=path,
            )
    if path.exists() and not force and not (own is not None and own(path)):
        raise TermwiseUserError(
            f"{option} exists and was not written by this command; pass --force to replace it",
            path=path,
        )


def json_output_with(*keys: str) -> Callable[[Path], bool]:
    """``own`` for :func:`check_output`: a JSON object (or list of them) holding ``keys``,
    the shape of a command's own JSON report."""

    def own(path: Path) -> bool:
        try:
            if path.stat().st_size > 256 * 2**20:
                return False
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return False
        first = data[0] if isinstance(data, list) and data else data
        return isinstance(first, dict) and all(key in first for key in keys)

    return own


def jsonl_output_with(*keys: str) -> Callable[[Path], bool]:
    """``own`` for :func:`check_output`: JSONL whose first record holds one of ``keys``
    (the field a scoring command adds), or an empty file."""

    def own(path: Path) -> bool:
        try:
            with path.open("rb") as handle:
                first = next((line for line in handle if line.strip()), None)
        except OSError:
            return False
        if first is None:
            return True
        try:
            record = orjson.loads(first)
        except orjson.JSONDecodeError:
            return False
        return isinstance(record, dict) and any(key in record for key in keys)

    return own


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


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[IO[bytes]]:
    """A binary handle on a temporary beside ``path``; on success it is flushed to disk and
    renamed over ``path`` (atomic on POSIX), on any error (Ctrl-C included) removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def replace_directory(new: Path, directory: Path) -> None:
    """Put the complete folder ``new`` at ``directory``: an older ``directory`` is renamed
    aside to ``.NAME.old`` and removed only once ``new`` is in place, so a crash at any point
    leaves a complete folder (the new one, or the old one at ``directory`` or ``.NAME.old``)."""
    old = directory.with_name(f".{directory.name}.old")
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        directory.rename(old)
    new.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(directory: Path) -> Iterator[Path]:
    """An empty folder beside ``directory`` to write into; on success it replaces
    ``directory`` (see :func:`replace_directory`), on any error (Ctrl-C included) it is
    removed and ``directory`` is untouched.

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> with atomic_directory(root / "model") as partial:
    ...     _ = (partial / "weights.bin").write_bytes(b"new")
    >>> sorted(p.name for p in root.iterdir()), (root / "model" / "weights.bin").read_bytes()
    (['model'], b'new')
    """
    partial = directory.with_name(f".{directory.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    replace_directory(partial, directory)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """``path.write_bytes(data)``, atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as handle:
        handle.write(data)


def write_json(path: Path, payload: Any) -> None:
    """Indented JSON, written atomically."""
    write_bytes_atomic(path, orjson.dumps(payload, option=orjson.OPT_INDENT_2))
