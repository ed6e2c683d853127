"""Writing outputs without losing anything: atomic files and folders, and the marker that tells
termwise's own earlier output from a user's file of the same shape.

* Every output file goes through :func:`atomic_write` (a temporary beside the target, renamed
  into place only when complete) and every output folder through :func:`atomic_directory`.
  Their temporaries have names unique to the call (``.NAME.PID-RANDOM.termwise-partial``),
  created with ``O_EXCL``, so they never reuse, and never remove, a name a user keeps.
* A folder temporary holds :data:`TEMPORARY_MARKER` (host and pid of its writer): a leftover
  from a crash is recognised by it, and removed (or, an old folder moved aside, put back)
  only once its writer is gone.
* A command's output (``btrm score -o``, ``--json``) gets a sidecar ``.NAME.termwise.json``
  naming the command and the output's size and SHA-256. :func:`check_output` replaces a file
  without ``--force`` only when that sidecar says this command wrote exactly these bytes: a
  user's file is never judged termwise's own by its shape.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from termwise.errors import TermwiseUserError

TEMPORARY_MARKER = ".termwise-temporary"
# Names of the temporaries this module makes: .NAME.PID-RANDOM.termwise-partial|old
TEMPORARY_NAME = re.compile(r"\.(?P<target>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.termwise-(partial|old)")
SIDECAR_LIMIT = 2**20  # a marker is a few hundred bytes; anything larger is not ours


def _temporary(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.termwise-{kind}")


class DigestWriter:
    """A binary handle that also counts and hashes what goes through it."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return int(self.handle.write(data))

    def writelines(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            self.write(line)


def _create_exclusive(path: Path) -> tuple[Path, int]:
    """A new file beside ``path`` that did not exist before (never a user's)."""
    while True:
        partial = _temporary(path, "partial")
        try:
            return partial, os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_write(path: Path, owner: str | None = None) -> Iterator[DigestWriter]:
    """A binary handle on a temporary beside ``path``; on success it is flushed to disk and
    renamed over ``path`` (atomic on POSIX), on any error (Ctrl-C included) removed.
    ``owner`` (a command, ``"btrm score"``) marks the result as that command's output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial, descriptor = _create_exclusive(path)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            writer = DigestWriter(handle)
            yield writer
            handle.flush()
            os.fsync(handle.fileno())
        if owner is not None:
            _write_marker(path, owner, writer)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a library that writes by file name
    (safetensors); renamed over ``path`` once the block ends without an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial, descriptor = _create_exclusive(path)
    os.close(descriptor)
    try:
        yield partial
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes, owner: str | None = None) -> None:
    """``path.write_bytes(data)``, atomically (see :func:`atomic_write`)."""
    with atomic_write(path, owner) as handle:
        handle.write(data)


def write_json(path: Path, payload: Any, owner: str | None = None) -> None:
    """Indented JSON, written atomically (``owner``: see :func:`atomic_write`)."""
    write_bytes_atomic(path, orjson.dumps(payload, option=orjson.OPT_INDENT_2), owner)


# -- the output marker ----------------------------------------------------------------------


def marker_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.termwise.json")


def _read_marker(path: Path) -> dict[str, Any] | None:
    sidecar = marker_path(path)
    try:
        if not sidecar.is_file() or sidecar.stat().st_size > SIDECAR_LIMIT:
            return None
        data = orjson.loads(sidecar.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and "written_by" in data else None


def _write_marker(path: Path, owner: str, writer: DigestWriter) -> None:
    sidecar = marker_path(path)
    if sidecar.exists() and _read_marker(path) is None:
        return  # a file of the user's by that name: kept; the output stays unmarked
    payload = {"written_by": f"termwise {owner}", "bytes": writer.size}
    payload["sha256"] = writer.sha256.hexdigest()
    with contextlib.suppress(OSError):  # unmarked only means a rerun asks for --force
        write_bytes_atomic(sidecar, orjson.dumps(payload))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(2**20):
            digest.update(block)
    return digest.hexdigest()


def is_own_output(path: Path, owner: str) -> bool:
    """Whether ``path`` holds exactly what ``termwise OWNER`` wrote there (its marker
    names the command, the size and the SHA-256 of these bytes)."""
    marker = _read_marker(path)
    try:
        return (
            marker is not None
            and marker.get("written_by") == f"termwise {owner}"
            and marker.get("bytes") == path.stat().st_size
            and marker.get("sha256") == _sha256(path)
        )
    except OSError:
        return False


def check_output(
    path: Path,
    *inputs: Path,
    option: str = "--output",
    force: bool = False,
    owner: str | None = None,
) -> None:
    """Refuse, before any work, an output that could not be written or would replace
    something the user has: a directory, a path under a file or under a read-only folder,
    an input (a file the command reads, or a path inside an input directory such as the
    model), or an existing file, unless ``force`` or the file is ``termwise OWNER``'s own
    earlier output (:func:`is_own_output`)."""
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
    if path.exists() and not force and not (owner is not None and is_own_output(path, owner)):
        raise TermwiseUserError(
            f"{option} exists and was not written by this command; pass --force to replace it",
            path=path,
        )


# -- folders --------------------------------------------------------------------------------


def _mark_temporary(folder: Path) -> None:
    payload = {"host": socket.gethostname(), "pid": os.getpid()}
    (folder / TEMPORARY_MARKER).write_bytes(orjson.dumps(payload))


def is_temporary(entry: Path) -> bool:
    """Whether ``entry`` is a temporary of this module: its name, and for a folder the
    marker inside it."""
    if entry.is_symlink() or not TEMPORARY_NAME.fullmatch(entry.name):
        return False
    return entry.is_file() or (entry / TEMPORARY_MARKER).is_file()


def _writer_gone(entry: Path) -> bool:
    """Whether the process that made the temporary ``entry`` has ended (on this host)."""
    try:
        writer = orjson.loads((entry / TEMPORARY_MARKER).read_bytes())
        host, pid = writer["host"], int(writer["pid"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return False
    if host != socket.gethostname():
        return False  # another machine's writer: it may still be running
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, under another user
    return False


def recover_leftovers(directory: Path) -> None:
    """Tidy after a crash of an earlier write of ``directory``: its temporaries whose writer
    is gone are removed, except an old folder moved aside with nothing in its place, which
    is put back."""
    parent = directory.parent
    if not parent.is_dir():
        return
    for entry in parent.glob(f".{glob_escape(directory.name)}.*.termwise-*"):
        match = TEMPORARY_NAME.fullmatch(entry.name)
        if match is None or match["target"] != directory.name or not entry.is_dir():
            continue
        if not is_temporary(entry) or not _writer_gone(entry):
            continue
        if entry.name.endswith("-old") and not directory.exists():
            (entry / TEMPORARY_MARKER).unlink()
            entry.rename(directory)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def replace_directory(new: Path, directory: Path) -> None:
    """Put the complete folder ``new`` at ``directory``: an older ``directory`` is renamed
    aside (a name unique to this call, marked as a temporary) and removed only once ``new``
    is in place, so a crash at any point leaves a complete folder (the new one, or the old
    one at ``directory`` or aside, where :func:`recover_leftovers` puts it back)."""
    old = None
    if directory.exists():
        old = _temporary(directory, "old")
        directory.rename(old)
        _mark_temporary(old)
    new.rename(directory)
    if old is not None:
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
    directory.parent.mkdir(parents=True, exist_ok=True)
    recover_leftovers(directory)
    partial = _temporary(directory, "partial")
    partial.mkdir()  # a name of its own: mkdir fails rather than reuse one
    try:
        _mark_temporary(partial)
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # its name is this call's alone
        raise
    (partial / TEMPORARY_MARKER).unlink(missing_ok=True)
    replace_directory(partial, directory)
