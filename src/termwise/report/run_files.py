"""What a run directory holds, read tolerantly: a run that is still going may have a
half-written last line, and any file may be missing (its section is left out, with a note).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from termwise.errors import TermwiseUserError
from termwise.health.findings import HEALTH_FILE, Finding, read_findings
from termwise.trainer.run_dir import RUN_MARKER

SCALARS = "scalars.csv"
CONFIG = "config.yaml"
REPORT = "report.json"
EVAL_FILE = "eval.json"
# Where runs written before the common layout kept their results, and which recipe wrote them.
LEGACY_RESULTS = {"gates.json": "lvm", "result.json": "bayes_clf"}


@dataclass
class RunFiles:
    run_dir: Path
    scalars: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    config: str | None = None
    config_path: Path | None = None
    report: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None  # eval.json (or an older run's results file)
    recipe: str | None = None  # which recipe wrote the run, as it recorded it
    notes: list[str] = field(default_factory=list)

    def series(self, name: str) -> tuple[list[int], list[float]] | None:
        return self.scalars.get(name)

    def names_ending(self, suffix: str) -> list[str]:
        return sorted(n for n in self.scalars if n.endswith(suffix))

    @property
    def last_step(self) -> int | None:
        steps = [s[-1] for s, _ in self.scalars.values() if s]
        return max(steps) if steps else None


def read_scalars_tolerant(path: Path) -> tuple[dict[str, tuple[list[int], list[float]]], int]:
    """``{name: (steps, values)}`` and the number of rows that did not parse."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    bad = 0
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                step, name, value = int(row["step"]), str(row["name"]), float(row["value"])
            except (KeyError, TypeError, ValueError):
                bad += 1
                continue
            steps, values = series.setdefault(name, ([], []))
            steps.append(step)
            values.append(value)
    return series, bad


def _json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        notes.append(f"{path.name}: unreadable ({error}); left out")
        return None
    if not isinstance(data, dict):
        notes.append(f"{path.name}: not a JSON object; left out")
        return None
    return data


def read_run(run_dir: Path) -> RunFiles:
    """Everything a report draws on; only a missing directory is an error."""
    if not run_dir.is_dir():
        reason = "is a file, expected" if run_dir.exists() else "not found: expected"
        raise TermwiseUserError(f"{reason} a run directory", path=run_dir)
    run = RunFiles(run_dir)
    if (run_dir / SCALARS).is_file():
        run.scalars, bad = read_scalars_tolerant(run_dir / SCALARS)
        if bad:
            run.notes.append(f"{SCALARS}: {bad} row(s) did not parse (a run still writing?)")
    else:
        run.notes.append(f"no {SCALARS}: the curves are left out")
    if (run_dir / HEALTH_FILE).is_file():
        run.findings, unreadable = read_findings(run_dir / HEALTH_FILE)
        if unreadable:
            run.notes.append(f"{HEALTH_FILE}: {unreadable} unreadable line(s) skipped")
    for directory in (run_dir, run_dir.parent):  # a demo's runs keep the config one up
        if (directory / CONFIG).is_file():
            run.config_path = directory / CONFIG
            run.config = run.config_path.read_text(encoding="utf-8", errors="replace")
            break
    else:
        run.notes.append(f"no {CONFIG}: the config section is left out")
    if (run_dir / REPORT).is_file():
        run.report = _json(run_dir / REPORT, run.notes)
    else:
        run.notes.append(f"no {REPORT}: the run has not finished (or was stopped)")
    run.evaluation, run.recipe = _evaluation(run_dir, run.notes)
    return run


def _evaluation(run_dir: Path, notes: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """The run's results and the recipe that wrote them: ``eval.json`` names its recipe;
    an older run's results file (one note says so) has its recipe in the run's marker."""
    marker = _json(run_dir / RUN_MARKER, []) if (run_dir / RUN_MARKER).is_file() else None
    recipe = (marker or {}).get("recipe") or None
    if (run_dir / EVAL_FILE).is_file():
        data = _json(run_dir / EVAL_FILE, notes)
        return data, (data or {}).get("recipe") or recipe
    for name, writer in LEGACY_RESULTS.items():
        if (run_dir / name).is_file():
            notes.append(f"{name}: the results of a run from before eval.json")
            return _json(run_dir / name, notes), recipe or writer
    return None, recipe
