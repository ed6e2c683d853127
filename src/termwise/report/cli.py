"""``termwise report RUN_DIR [-o report.html]``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def report(
    run_dir: Path = typer.Argument(..., help="A run directory (finished or still running)."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="HTML file to write (default: RUN_DIR/report.html)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing OUTPUT."),
) -> None:
    """One self-contained HTML page: term shares, raw terms, learning rate and gradient
    norm, free bits, auto-scaled weights, evaluations, per-head AUC (btrm), calibration
    (pref), gates (lvm), findings marked on the curves, and the config."""
    from termwise.data.jsonl import write_bytes_atomic
    from termwise.report.html import build_report
    from termwise.report.run_files import read_run
    from termwise.trainer.run_dir import check_run_output

    run = read_run(run_dir)
    target = output or run_dir / "report.html"
    check_run_output(target, run_dir, "report.html", force, owner="report")
    write_bytes_atomic(target, build_report(run).encode("utf-8"), owner="report")
    Console().print(f"wrote {target}", markup=False)
