"""Run directories: never train over an old run by accident, and delete only what termwise wrote.

A new run starts in a missing or empty directory and writes a marker there
(``.termwise-run.json``). A directory that holds a run is continued only with ``resume`` and
replaced only with ``overwrite``, and both need the marker: a folder that merely holds a
``config.yaml`` or a ``checkpoints/`` of someone else's is never a termwise run. Replacing
removes the entries a run writes (the trainer's :data:`RUN_ENTRIES` and those its recipe
declared, ``OUTPUTS``, recorded in the marker), never the folder's other contents,
never the current directory or a folder holding the run's inputs, never through a symlink.
The resolved config is written into the run as ``config.yaml``, so an evaluation,
``health fix`` or a person can reproduce the run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel
from rich.console import Console

from termwise.config import commented_yaml
from termwise.data.outputs import is_temporary, write_bytes_atomic
from termwise.errors import TermwiseUserError
from termwise.trainer.run_lock import LOCK_FILE

RUN_CONFIG = "config.yaml"
RUN_MARKER = ".termwise-run.json"
# The top-level entries the trainer, run_recipe, report and health fix write into a run.
RUN_ENTRIES = re.compile(
    r"(config\.yaml|checkpoints|scalars\.csv|health\.jsonl|health_windows\.jsonl|"
    r"report\.json|report\.html|metrics\.jsonl|tb|model|eval\.json|"
    r"fixed\.yaml|fix\d+|fix\d+\.yaml)"
)
# What recipes wrote beside them before a run's marker recorded its recipe's OUTPUTS.
LEGACY_OUTPUTS = (
    r"best|gates\.json|result\.json|timing\.json|run\d+|\d+_[a-z_]+|dev_scores\.json|\.eval-.+",
)


OUTPUT_MARKER = re.compile(r"\.(?P<name>.+)\.termwise\.json")


def is_run_dir(path: Path) -> bool:
    """A directory termwise made for a run: it holds the marker or, for a run written before
    the marker existed, a checkpoint in termwise's own layout (``step_NNNNNNNN/state.json``)."""
    if not path.is_dir():
        return False
    if (path / RUN_MARKER).is_file():
        return True
    return any(
        re.fullmatch(r"step_\d{8}", step.name) and (step / "state.json").is_file()
        for step in (path / "checkpoints").glob("step_*")
    )


def input_paths(config: Any) -> list[Path]:
    """Every path a config names (data files, caches, backbones): what a run must not delete."""
    found: list[Path] = []
    if isinstance(config, Path):
        found.append(config)
    elif isinstance(config, BaseModel):
        for name in type(config).model_fields:
            found += input_paths(getattr(config, name))
    elif isinstance(config, list | tuple):
        for item in config:
            found += input_paths(item)
    elif isinstance(config, dict):
        for item in config.values():
            found += input_paths(item)
    return found


def _contains(folder: Path, path: Path) -> bool:
    folder, path = folder.resolve(), path.resolve()
    return path == folder or folder in path.parents


def check_replaceable(path: Path, inputs: Iterable[Path] = (), option: str = "--overwrite") -> None:
    """Refuse to replace ``path`` when that could delete anything but a run's own files."""
    if path.is_symlink():
        raise TermwiseUserError(
            f"is a symbolic link; {option} never deletes through one (give the real folder)",
            path=path,
        )
    if _contains(path, Path.cwd()):
        raise TermwiseUserError(
            f"is the current directory or one above it; {option} never replaces it "
            "(give a folder of its own)",
            path=path,
        )
    for source in inputs:
        if _contains(path, source):
            raise TermwiseUserError(
                f"holds an input of this run ({source}); {option} never replaces it",
                path=path,
            )


def prepare_run_dir(
    path: Path,
    resume: bool = False,
    overwrite: bool = False,
    inputs: Iterable[Path] = (),
    recipe: str = "",
    outputs: Iterable[str] = (),
) -> None:
    """Check ``path`` for a new run (or for resuming one) before anything heavy loads;
    ``outputs``: the recipe's ``OUTPUTS``, recorded in the marker."""
    if path.exists() and not path.is_dir():
        raise TermwiseUserError("is a file, expected a run directory", path=path)
    if resume and overwrite:
        raise TermwiseUserError("give --resume or --overwrite, not both", path=path)
    if resume:
        if not (path / "checkpoints").is_dir():
            raise TermwiseUserError("nothing to resume: no checkpoints/ here", path=path)
        if not is_run_dir(path):
            raise TermwiseUserError(
                f"not a termwise run (no {RUN_MARKER}); nothing here is resumed or changed",
                path=path,
            )
        return
    if path.is_dir() and any(entry.name != LOCK_FILE for entry in path.iterdir()):
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
        check_replaceable(path, inputs)
        kept = remove_run_files(path)
        if kept:
            Console(stderr=True).print(
                f"note: {path}: kept {len(kept)} entries termwise did not write "
                f"({', '.join(sorted(kept)[:5])}{', ...' if len(kept) > 5 else ''})",
                markup=False,
            )
    path.mkdir(parents=True, exist_ok=True)
    mark_run_dir(path, recipe, outputs)


def run_entries(path: Path) -> re.Pattern[str]:
    """The names of the top-level entries the run in ``path`` writes: the trainer's and
    its recipe's ``OUTPUTS`` as its marker records them."""
    try:
        marker = orjson.loads((path / RUN_MARKER).read_bytes())
        outputs = marker["outputs"]
        if not (isinstance(outputs, list) and all(isinstance(o, str) for o in outputs)):
            raise TypeError(outputs)
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        outputs = list(LEGACY_OUTPUTS)  # a run from before its marker named them
    return re.compile("|".join([RUN_ENTRIES.pattern, *(f"({o})" for o in outputs)]))


def run_files(path: Path) -> Iterator[Path]:
    """The entries of a run directory that a run wrote (its marker included, the lock of
    the run writing it now left out), and the temporaries of an interrupted write."""
    entries = run_entries(path)
    for entry in path.iterdir():
        sidecar = OUTPUT_MARKER.fullmatch(entry.name)  # the marker of a run file's output
        name = entry.name if sidecar is None else sidecar["name"]
        if name == RUN_MARKER or entries.fullmatch(name) or is_temporary(entry):
            yield entry


def model_inputs(model: Path) -> list[Path]:
    """What a command reading a saved model must never write over: the model directory and,
    when it sits in a run directory, that run's own files."""
    parent = model.parent
    return [model, *(run_files(parent) if is_run_dir(parent) else ())]


def check_run_output(
    target: Path, run_dir: Path, own_name: str, force: bool, owner: str | None = None
) -> None:
    """An output a command writes beside a run's files (``report``, ``health fix``): never
    one of them, nor a run file's name in the run (or its parent), unless it is the
    command's own ``own_name``; an existing file only with ``force`` or when ``termwise
    OWNER`` wrote it (its marker says so)."""
    from termwise.data.jsonl import check_output

    inputs = [p for p in run_files(run_dir) if p.name != own_name]
    check_output(target, *inputs, run_dir.parent / RUN_CONFIG, force=force, owner=owner)
    if target.name != own_name and run_entries(run_dir).fullmatch(target.name):
        if target.parent.resolve() in (run_dir.resolve(), run_dir.parent.resolve()):
            raise TermwiseUserError(
                "--output would be one of the run's own files; write elsewhere", path=target
            )


def remove_run_files(path: Path) -> list[str]:
    """Remove a run's own entries from ``path``; return the names of the entries kept."""
    owned = set(run_files(path))
    for entry in owned:
        if entry.name == RUN_MARKER:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (path / RUN_MARKER).unlink(missing_ok=True)  # last: an interrupted removal stays a run
    return [entry.name for entry in path.iterdir() if entry not in owned | {path / LOCK_FILE}]


def mark_run_dir(path: Path, recipe: str, outputs: Iterable[str] = ()) -> None:
    """Write the marker that makes ``path`` a termwise run (kept when it already is one)."""
    marker = path / RUN_MARKER
    if marker.is_file():
        return
    from termwise import __version__

    payload = {
        "recipe": recipe,
        "termwise": __version__,
        "pid": os.getpid(),
        "outputs": list(outputs),
    }
    write_bytes_atomic(marker, orjson.dumps(payload))


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
    outputs: Iterable[str] = (),
) -> None:
    """What every recipe's ``train`` does first: check the run directory
    (:func:`prepare_run_dir`, the config's paths as the inputs it must not delete, the
    recipe's ``outputs`` recorded) and record the config in it (:func:`write_run_config`)."""
    recipe = type(config).__module__.split(".")[-2] if "recipes" in type(config).__module__ else ""
    prepare_run_dir(path, resume, overwrite, input_paths(config), recipe, outputs)
    write_run_config(path, config, console)
