"""Command-line options every system's CLI declares the same way (one declaration each)."""

from collections.abc import Callable
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


def train_command(
    app: typer.Typer, doc: str, run: Callable[[Path, Path, bool, bool], None]
) -> None:
    """Register ``train -c CONFIG -o RUN_DIR [--resume] [--overwrite]`` on ``app``: every
    system trains with the same flags; ``run(config, output, resume, overwrite)``."""

    def train(
        config: Path = CONFIG,
        output: Path = RUN_DIR,
        resume: bool = RESUME,
        overwrite: bool = OVERWRITE,
    ) -> None:
        run(config, output, resume, overwrite)

    train.__doc__ = doc
    app.command("train")(train)
