"""One writer per run directory: a lock file held while a ``train`` writes the run.

``RUN_DIR/.termwise-lock.json`` names its holder (pid, host, start time) and is held with
``flock``, which the kernel releases when the holder ends however it ends (kill -9 too), so
a lock left behind by a dead run is stale and taken over, never a reason to refuse. A second
``train`` on a live run, with any flag, is refused with one line naming the holder. Under a
distributed launch only the main process (``RANK`` 0) takes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from termwise.errors import TermwiseUserError

LOCK_FILE = ".termwise-lock.json"


def _holder(path: Path) -> str:
    """Who the lock file says holds it, for the refusal."""
    try:
        data: Any = orjson.loads(path.read_bytes())
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(data["started"])))
        return f"pid {int(data['pid'])} on {data['host']}, since {started}"
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError):
        return "a process that has not yet written its name"


def _open_locked(path: Path) -> int:
    """A descriptor on ``path`` holding its exclusive lock, or a refusal naming the holder."""
    while True:
        try:
            # O_NOFOLLOW: a link planted at the lock's name is refused, never truncated through
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as error:
            reason = "it is a symbolic link" if path.is_symlink() else error.strerror
            raise TermwiseUserError(
                f"cannot create the run's lock file {LOCK_FILE} ({reason})", path=path.parent
            ) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise TermwiseUserError(
                f"another termwise run is writing this run directory ({_holder(path)}); "
                "wait for it to end or stop it",
                path=path.parent,
            ) from None
        try:
            same = os.fstat(descriptor).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return descriptor
        os.close(descriptor)  # the holder removed the file as we opened it: try again


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block (see the module docstring). A folder made here
    for the lock alone is removed again when nothing else was written into it."""
    if os.environ.get("RANK", "0") != "0":
        yield
        return
    made = not run_dir.exists()
    if made or run_dir.is_dir():
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TermwiseUserError(
                f"cannot create the run directory ({error.strerror})", path=run_dir
            ) from None
    if not run_dir.is_dir():
        yield  # not a folder: the run directory's own checks refuse it
        return
    path = run_dir / LOCK_FILE
    descriptor = _open_locked(path)
    try:
        payload = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, orjson.dumps(payload), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(descriptor)
        if made:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only when empty: the run wrote nothing
