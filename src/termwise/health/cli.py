"""``termwise health``: read the findings of a run."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from termwise.errors import TermwiseUserError
from termwise.health.findings import HEALTH_FILE, read_findings
from termwise.health.report import print_summary

health_app = typer.Typer(help="Inspect the health findings of a run.", no_args_is_help=True)


@health_app.command("explain")
def explain(
    run_dir: Path = typer.Argument(..., help="A run directory (finished or still running)."),
) -> None:
    """Print a run's findings grouped by rule, with what to change."""
    if not run_dir.is_dir():
        raise TermwiseUserError("run directory not found", path=run_dir)
    path = run_dir / HEALTH_FILE
    if not path.is_file():
        nested = sorted(run_dir.glob(f"*/{HEALTH_FILE}"))
        if not nested:
            raise TermwiseUserError(f"no {HEALTH_FILE} here: not a termwise run", path=run_dir)
        for child in nested:
            _explain_file(child, str(child.parent))
        return
    _explain_file(path, str(run_dir))


def _explain_file(path: Path, title: str) -> None:
    console = Console()
    findings, unreadable = read_findings(path)
    print_summary(findings, console, title=f"Health of {title}")
    if unreadable:
        console.print(f"({unreadable} unreadable line(s) in {path}: a run still writing?)")
