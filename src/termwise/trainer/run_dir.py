"""Run directories: never train over an old run by accident, and record what a run ran with.

A directory that already holds a run is continued only with ``resume`` and replaced only
with ``overwrite`` (and only when it is recognisably a termwise run, so a mistyped
``-o .`` never deletes a project). The resolved config is written into it as
``config.yaml``, so an evaluation, ``health fix`` or a person can reproduce the run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import BaseModel
from rich.console import Console

from termwise.config import commented_yaml
from termwise.data.jsonl import write_bytes_atomic
from termwise.errors import TermwiseUserError

RUN_CONFIG = "config.yaml"
# What a termwise run leaves in its directory: any of these marks one.
RUN_MARKERS = ("checkpoints", "scalars.csv", "health.jsonl", RUN_CONFIG, "report.json")


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / marker).exists() for marker in RUN_MARKERS)


def prepare_run_dir(path: Path, resume: bool = False, overwrite: bool = False) -> None:
    """Check ``path`` for a new run (or for resuming one) before anything heavy loads."""
    if path.exists() and not path.is_dir():
        raise TermwiseUserError("is a file, expected a run directory", path=path)
    if resume and overwrite:
        raise TermwiseUserError("give --resume or --overwrite, not both", path=path)
    if resume:
        if not (path / "checkpoints").is_dir():
            raise TermwiseUserError("nothing to resume: no checkpoints/ here", path=path)
        return
    if path.is_dir() and any(path.iterdir()):
        if not is_run_dir(path):
            raise TermwiseUserError(
                "not empty and not a termwise run; choose a new or empty run directory",
                path=path,
            )
        if not overwrite:
            raise TermwiseUserError(
                "already holds a run; pass --resume to continue it or --overwrite to replace it",
                path=path,
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def write_run_config(path: Path, config: BaseModel, console: Console | None = None) -> None:
    """``RUN_DIR/config.yaml``: the resolved config (every default filled in). A resumed
    run whose config differs from the recorded one says so, then records the new one."""
    text = commented_yaml(config, complete=True)
    target = path / RUN_CONFIG
    if target.is_file() and target.read_text(encoding="utf-8") != text and console is not None:
        console.print(
            f"note: the config differs from the one this run started with ({target}); "
            "recording the new one",
            markup=False,
        )
    write_bytes_atomic(target, text.encode("utf-8"))


def start_run(
    path: Path,
    config: BaseModel,
    console: Console,
    resume: bool = False,
    overwrite: bool = False,
) -> None:
    """What every recipe's ``train`` does first: check the run directory
    (:func:`prepare_run_dir`) and record the config in it (:func:`write_run_config`)."""
    prepare_run_dir(path, resume, overwrite)
    write_run_config(path, config, console)
