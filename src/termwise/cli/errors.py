"""How the command line reports problems: one line each, and an exit status that says what
happened (2: the user's input, 1: training diverged, 130: interrupted)."""

from __future__ import annotations

import os
import sys
import warnings
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


def run_cli(app: typer.Typer) -> int:
    """Run ``app``; a user's mistake becomes one line on stderr and status 2."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    warnings.showwarning = _one_line_warning
    # Library progress bars and notices ("Loading weights ...") would stand between the
    # user and the one line that matters; read before transformers is imported.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # already imported (an embedding program, a test)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    try:
        app()
    except TermwiseUserError as error:
        err.print(f"error: {error}", markup=False)
        return 2
    except ValidationError as error:
        err.print(f"error: {validation_line(error)}", markup=False)
        return 2
    except TrainingDiverged as error:
        err.print(f"training stopped: {error}", markup=False)
        return 1
    return 0
