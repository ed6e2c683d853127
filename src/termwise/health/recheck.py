"""A finished run judged again by today's rules, from the windows it recorded."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from termwise.errors import TermwiseUserError
from termwise.health.base import Rule, Window
from termwise.health.findings import Finding
from termwise.health.monitor import HealthMonitor
from termwise.health.windows import WINDOWS_FILE, number_back, read_records


def recheck(
    run_dir: Path, rules: Iterable[Rule] | None = None, skipped: list[str] | None = None
) -> list[Finding]:
    """The findings today's ``rules`` (default: every built-in rule) give on the windows a
    run recorded. A malformed record is skipped and described in ``skipped`` when given; a
    file with no readable record at all is refused."""
    path = run_dir / WINDOWS_FILE
    if not path.is_file():
        raise TermwiseUserError(
            f"no {WINDOWS_FILE}: the run was trained before termwise kept its windows",
            path=run_dir,
        )
    monitor = HealthMonitor(rules=rules)
    bad: list[str] = []
    records = read_records(path, bad)
    if bad and not records:
        raise TermwiseUserError(
            f"not a windows file written by termwise (no readable record; first: {bad[0]})",
            path=path,
        )
    _replay(monitor, records)
    if skipped is not None:
        skipped.extend(bad)
    return monitor.findings


def _replay(monitor: Any, records: list[dict[str, Any]]) -> None:
    for record in records:
        if record["kind"] == "metrics":
            metrics = {k: number_back(v) for k, v in record["metrics"].items()}
            monitor.report_metrics(int(record["step"]), metrics)
            continue
        monitor.config_keys = dict(record.get("config_keys", {}))
        window = Window(
            index=int(record["index"]),
            step=int(record["step"]),
            steps=int(record["steps"]),
            means={k: number_back(v) for k, v in record["means"].items()},
            terms=tuple(record["terms"]),
            roles=tuple(record["roles"]),
            nonfinite_steps=int(record.get("nonfinite_steps", 0)),
        )
        monitor.check(window)
