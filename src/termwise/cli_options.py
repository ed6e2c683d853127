"""Command-line options every system's CLI declares the same way (one declaration each)."""

from pathlib import Path

import typer

CONFIG: Path = typer.Option(..., "--config", "-c", help="YAML config.")
RUN_DIR: Path = typer.Option(..., "--output", "-o", help="Run directory.")
RESUME: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint.")
OVERWRITE: bool = typer.Option(
    False, "--overwrite", help="Replace the run already in the run directory."
)
FORCE: bool = typer.Option(False, "--force", help="Overwrite an existing OUTPUT.")
MODEL_DIR: Path = typer.Option(..., "--model", "-m", help="A saved model (OUTPUT/model).")
SCORE_INPUT: Path = typer.Option(..., "--input", "-i", help="JSONL records to score.")
SCORE_OUTPUT: Path = typer.Option(..., "--output", "-o", help="JSONL with scores added.")
