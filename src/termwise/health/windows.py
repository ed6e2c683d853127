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


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a windows file; a half-written last line (a run still writing) is
    skipped."""
    records = []
    for raw in path.read_bytes().splitlines():
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("kind") in ("window", "metrics"):
            records.append(record)  # fields are checked where they are read
    return records
