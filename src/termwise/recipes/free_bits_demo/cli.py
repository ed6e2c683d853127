"""``termwise demo``: the engine on a real (small) training run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from termwise import cli_options as opts
from termwise.config import load_yaml_config

demo_app = typer.Typer(help="Demonstrations of the engine on real runs.", no_args_is_help=True)


@demo_app.command("free-bits")
def free_bits(
    run_dir: Path = typer.Option(Path("runs/demo"), help="Where both runs write their files."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML demo config."),
    free_bits: float | None = typer.Option(None, min=0.0, help="Free bits of run 1 (default 0.1)."),
    max_steps: int | None = typer.Option(None, min=1, help="Training steps per run."),
    overwrite: bool = opts.OVERWRITE,
) -> None:
    """Train with free bits above the model's KL, then at the value the monitor suggests."""
    import termwise.recipes.free_bits_demo.recipe as demo
    from termwise.recipes.free_bits_demo.config import FreeBitsDemoConfig
    from termwise.trainer.recipe import run_recipe
    from termwise.trainer.run_dir import check_replaceable

    settings = load_yaml_config(config, FreeBitsDemoConfig) if config else FreeBitsDemoConfig()
    updates: dict[str, Any] = {} if free_bits is None else {"free_bits": free_bits}
    if max_steps is not None:
        updates["trainer"] = settings.trainer.model_copy(update={"max_steps": max_steps})
    settings = settings.model_copy(update=updates)
    if overwrite and config and run_dir.is_dir():  # the config file is an input to keep
        check_replaceable(run_dir, [config])
    run_recipe(demo, settings, run_dir, Console(), overwrite=overwrite)
