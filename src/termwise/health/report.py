"""Rendering findings for people: one line per new finding, a grouped summary table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from termwise.data.jsonl import write_bytes_atomic
from termwise.health.findings import Finding, group_findings

REPORT_FILE = "report.json"


def write_report(
    run_dir: Path,
    step: int,
    scalars: Mapping[str, float],
    findings: Iterable[Finding],
    **extra: Any,
) -> None:
    """``run_dir/report.json``: the last step, its scalars, every finding and ``extra``
    (e.g. held-out metrics), written atomically."""
    report = {
        "step": step,
        **extra,
        "scalars": dict(scalars),
        "findings": [orjson.loads(f.to_json()) for f in findings],
    }
    write_bytes_atomic(
        run_dir / REPORT_FILE,
        orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY),
    )


STYLE = {"info": "cyan", "warning": "yellow", "error": "bold red"}


def finding_line(finding: Finding) -> Text:
    text = Text()
    text.append(f"[step {finding.step}] ", style="dim")
    text.append(f"{finding.severity.upper()} {finding.code}", style=STYLE[finding.severity])
    text.append(f": {finding.message}")
    if finding.suggestion:
        text.append(f"\n    -> {finding.suggestion}", style="green")
    return text


def summary_table(findings: Iterable[Finding], title: str = "Health summary") -> Table:
    table = Table(title=title, show_lines=True)
    for column in ("severity", "code", "subject", "steps", "count", "latest finding"):
        table.add_column(column, overflow="fold")
    for group in group_findings(findings):
        latest = group.latest
        steps = (
            str(group.first_step)
            if group.first_step == latest.step
            else f"{group.first_step}-{latest.step}"
        )
        detail = latest.message + (f"\n-> {latest.suggestion}" if latest.suggestion else "")
        for change in latest.changes:  # what `termwise health fix` would write
            detail += f"\n   change: {change['config_key']}: {change.get('from')} -> {change['to']}"
        table.add_row(
            Text(group.worst, style=STYLE[group.worst]),
            latest.code,
            latest.subject,
            steps,
            str(group.count),
            detail,
        )
    return table


def print_summary(
    findings: list[Finding],
    console: Console,
    title: str = "Health summary",
    include_info: bool = False,
) -> None:
    """The warnings and errors as a table; info notes (a healthy free-bits band, a band
    calibration) are only counted unless ``include_info``: they ask for no change."""
    shown = [f for f in findings if include_info or f.severity != "info"]
    notes = len(findings) - len(shown)
    aside = f" ({notes} info note(s): termwise health explain RUN --all)" if notes else ""
    if not shown:
        console.print(f"{title}: no {'findings' if include_info else 'warnings'}.{aside}")
        return
    console.print(summary_table(shown, title))
    if aside:
        console.print(aside.strip(" ()"))
