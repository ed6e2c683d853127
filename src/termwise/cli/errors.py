"""How the command line reports problems: one line each, and an exit status that says what
happened (2: the user's input or the file system, 1: training diverged, 130: interrupted by
Ctrl-C, 143: stopped by SIGTERM, which is handled as Ctrl-C so a run keeps its checkpoint)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from types import FrameType
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from termwise.errors import TermwiseUserError, TrainingDiverged


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"warning: {message}", markup=False)


def validation_line(error: ValidationError) -> str:
    """The first problem of a pydantic error as ``field: reason``."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    reason = first["msg"].removeprefix("Value error, ")
    return f"{field}: {reason}" if field else reason


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, ``docker stop``, a scheduler's preemption), raised
    where Ctrl-C would be, so the same clean-up runs (the trainer saves its last step)."""


_received: list[int] = []


def _terminate(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Terminated


def os_error_line(error: OSError) -> str:
    """``path: reason`` for a file-system error (permissions, a full disk, a broken link)."""
    reason = error.strerror or str(error) or type(error).__name__
    where = error.filename if error.filename is not None else ""
    if error.filename2 is not None:
        where = f"{where} -> {error.filename2}"
    return f"{where}: {reason.lower()}" if where else reason.lower()


def is_out_of_memory(error: BaseException) -> bool:
    """An allocation that failed (Python's, torch's CPU allocator, CUDA), not a bug."""
    text = str(error)
    return (
        isinstance(error, MemoryError)
        or type(error).__name__ == "OutOfMemoryError"
        or "can't allocate memory" in text
        or "not enough memory" in text
    )


def usage_line(error: typer.TyperException) -> str:
    """A command-line option error as one line, with where to read the options."""
    format_message = getattr(error, "format_message", None)
    message = (format_message() if format_message else str(error)).replace("\n", " ")
    ctx = getattr(error, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return f"{message}{hint}"


def run_cli(app: typer.Typer) -> int:
    """Run ``app``; a user's mistake becomes one line on stderr and status 2."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    _received.clear()
    if threading.current_thread() is not threading.main_thread():  # only main sets handlers
        return _run(app, err)
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(app, err)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(app: typer.Typer, err: Console) -> int:
    warnings.showwarning = _one_line_warning
    # A library's notice about its own API (transformers' renamed methods, called by PEFT)
    # is not the user's to act on; termwise's own deprecations are not filtered.
    for library in ("transformers", "peft", "accelerate", "torch"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=rf"{library}(\.|$)")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=rf"{library}(\.|$)")
    # Library progress bars and notices ("Loading weights ...") would stand between the
    # user and the one line that matters; read before transformers is imported.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # already imported (an embedding program, a test)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    try:
        result = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        return _interrupted(err)
    except typer.TyperException as error:
        err.print(f"error: {usage_line(error)}", markup=False)
        return 2
    except TermwiseUserError as error:
        err.print(f"error: {error}", markup=False)
        return 2
    except ValidationError as error:
        err.print(f"error: {validation_line(error)}", markup=False)
        return 2
    except TrainingDiverged as error:
        err.print(f"training stopped: {error}", markup=False)
        return 1
    except OSError as error:
        err.print(f"error: {os_error_line(error)}", markup=False)
        return 2
    except (MemoryError, RuntimeError) as error:
        if not is_out_of_memory(error):
            raise
        err.print(
            "error: out of memory: the model or a batch is too large for this machine "
            "(lower the config's sizes or trainer.batch_size)",
            markup=False,
        )
        return 2
    if result == 130:  # typer turns Ctrl-C (and our SIGTERM) into exit status 130
        return _interrupted(err)
    return result if isinstance(result, int) else 0


def _interrupted(err: Console) -> int:
    if _received:
        err.print("stopped (SIGTERM)", markup=False)
        return 143
    err.print("interrupted", markup=False)
    return 130
