"""Errors a user can act on. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations

import difflib
from pathlib import Path


class TermwiseUserError(Exception):
    """Bad input from the user: a file, a config value, a record.

    ``str(err)`` is a single line naming the file, line and field where they are known,
    e.g. ``configs/run.yaml:12: trainer.max_steps: must be > 0``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.reason}".replace("\n", " ")


class TrainingDiverged(RuntimeError):
    """Too many consecutive non-finite steps; the last good checkpoint is kept."""


def suggest(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class TermwiseDeprecationWarning(FutureWarning):
    """A renamed key or option still accepted; shown to users (FutureWarning is shown by
    default, DeprecationWarning is not), as one line by the CLI."""


class TermwiseConfigWarning(UserWarning):
    """A config that runs but rarely does what its author wants (one line in the CLI)."""
