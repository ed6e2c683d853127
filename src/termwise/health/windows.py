"""What the rules saw, kept so a finished run can be judged again by today's rules.

The monitor appends every window it checks (and every metric report) to
``health_windows.jsonl``; :func:`termwise.health.recheck.recheck` feeds them, in order, to a
fresh monitor. Rules only read windows and reports, so a recheck with the same rules gives
the same findings as the run did, and a recheck with changed rules (new thresholds, a newer
termwise) gives what those rules would have said, without training again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from termwise.health.base import MetricReport, Window

WINDOWS_FILE = "health_windows.jsonl"


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else repr(value)  # JSON has no NaN or Inf


def window_line(window: Window, config_keys: Mapping[str, Any]) -> bytes:
    record = {
        "kind": "window",
        "step": window.step,
        "index": window.index,
        "steps": window.steps,
        "means": {k: _number(v) for k, v in window.means.items()},
        "terms": list(window.terms),
        "roles": list(window.roles),
        "nonfinite_steps": window.nonfinite_steps,
        "config_keys": dict(config_keys),
    }
    return orjson.dumps(record) + b"\n"


def metrics_line(report: MetricReport) -> bytes:
    metrics = {k: _number(float(v)) for k, v in report.metrics.items()}
    return orjson.dumps({"kind": "metrics", "step": report.step, "metrics": metrics}) + b"\n"


def number_back(value: Any) -> float:
    return float(value)  # float("nan") / float("inf") read the repr back


def read_records(path: Path, bad: list[str] | None = None) -> list[dict[str, Any]]:
    """The well-formed records of a windows file. A line that is not one (a half-written last
    line of a run still writing, a field of another type) is skipped, and described in
    ``bad`` when given."""
    records = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
            problem = _problem(record)
        except orjson.JSONDecodeError:
            problem = "not JSON"
        if problem is None:
            records.append(record)
        elif bad is not None:
            bad.append(f"{path}:{number}: {problem}")
    return records


def _problem(record: Any) -> str | None:
    """Why ``record`` is not a window or metrics record as :func:`window_line` and
    :func:`metrics_line` write them (None when it is one)."""
    if not isinstance(record, dict) or record.get("kind") not in ("window", "metrics"):
        return "not a window or metrics record"
    integers = ("step",) if record["kind"] == "metrics" else ("step", "index", "steps")
    if not all(_is_int(record.get(k)) for k in integers):
        return f"{', '.join(integers)}: expected integers"
    numbers = record.get("metrics" if record["kind"] == "metrics" else "means")
    if not isinstance(numbers, dict) or not all(_is_number(v) for v in numbers.values()):
        return "metrics or means: expected an object of numbers"
    if record["kind"] == "metrics":
        return None
    terms, roles = record.get("terms"), record.get("roles")
    if not isinstance(terms, list) or not isinstance(roles, list) or len(terms) != len(roles):
        return "terms and roles: expected two lists of the same length"
    if not all(isinstance(v, str) for v in terms + roles):
        return "terms and roles: expected strings"
    if not _is_int(record.get("nonfinite_steps", 0)):
        return "nonfinite_steps: expected an integer"
    if not isinstance(record.get("config_keys", {}), dict):
        return "config_keys: expected an object"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, str):  # _number writes NaN and infinities as their repr
        return value in ("nan", "inf", "-inf")
    return isinstance(value, int | float) and not isinstance(value, bool)
