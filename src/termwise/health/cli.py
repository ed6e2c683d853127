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
    all_findings: bool = typer.Option(
        False, "--all", help="Also list info notes (a healthy band, a calibration)."
    ),
) -> None:
    """Print a run's warnings grouped by rule, with what to change."""
    if not run_dir.is_dir():
        reason = "is a file, expected" if run_dir.exists() else "not found: expected"
        raise TermwiseUserError(f"{reason} a run directory", path=run_dir)
    path = run_dir / HEALTH_FILE
    if not path.is_file():
        nested = sorted(run_dir.glob(f"*/{HEALTH_FILE}"))
        if not nested:
            raise TermwiseUserError(f"no {HEALTH_FILE} here: not a termwise run", path=run_dir)
        for child in nested:
            _explain_file(child, str(child.parent), all_findings)
        return
    _explain_file(path, str(run_dir), all_findings)


def _explain_file(path: Path, title: str, all_findings: bool) -> None:
    console = Console()
    findings, unreadable = read_findings(path)
    print_summary(findings, console, title=f"Health of {title}", include_info=all_findings)
    if unreadable:
        console.print(f"({unreadable} unreadable line(s) in {path}: a run still writing?)")


@health_app.command("recheck")
def recheck_run(
    run_dir: Path = typer.Argument(..., help="A run directory with health_windows.jsonl."),
    all_findings: bool = typer.Option(
        False, "--all", help="Also list info notes (a healthy band, a calibration)."
    ),
) -> None:
    """Judge a finished run again with this termwise's rules, from the windows the run
    recorded (no training); the run's own health.jsonl is left as it was."""
    from termwise.health.recheck import recheck
    from termwise.health.windows import WINDOWS_FILE

    if not run_dir.is_dir():
        raise TermwiseUserError("not found: expected a run directory", path=run_dir)
    runs = [run_dir] if (run_dir / WINDOWS_FILE).is_file() else None
    runs = runs or sorted(p.parent for p in run_dir.glob(f"*/{WINDOWS_FILE}")) or [run_dir]
    console = Console()
    for run in runs:
        title = f"Health of {run}, rechecked"
        skipped: list[str] = []
        print_summary(
            recheck(run, skipped=skipped), console, title=title, include_info=all_findings
        )
        if skipped:
            console.print(
                f"({len(skipped)} malformed record(s) skipped; first: {skipped[0]})", markup=False
            )


@health_app.command("fix")
def fix(
    run_dir: Path = typer.Argument(..., help="A run directory with config.yaml and findings."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Where to write the fixed config (default RUN_DIR/fixed.yaml)."
    ),
    only: str | None = typer.Option(None, "--only", help="Apply only this finding code."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing OUTPUT."),
) -> None:
    """Apply the run's findings' suggested values to its config, as a new file with a comment
    above each change; prints a diff. The run's own config is never modified."""
    from termwise.data.jsonl import write_bytes_atomic
    from termwise.health.fix import fix_config
    from termwise.trainer.run_dir import check_run_output

    result = fix_config(run_dir, only)
    target = output or run_dir / "fixed.yaml"
    # A config.yaml written into a sub-run would become its recorded config: refused too.
    check_run_output(target, run_dir, "fixed.yaml", force, owner="health fix")
    console = Console()
    for conflict in result.conflicts:
        console.print(f"conflict: {conflict}", markup=False)
    if not result.applied:
        console.print("no finding of this run suggests a config value; nothing written")
        return
    write_bytes_atomic(target, result.text.encode("utf-8"), owner="health fix")
    console.print(result.diff, markup=False, highlight=False)
    for finding, change in result.applied:
        console.print(
            f"{change['config_key']}: {change.get('from')} -> {change['to']} ({finding.code})",
            markup=False,
        )
    console.print(f"wrote {target}")
