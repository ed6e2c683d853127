"""``termwise bayes-clf``: a Bayesian sequence classifier, and why it will not learn."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from termwise.config import load_yaml_config

bayes_app = typer.Typer(help="Bayesian sequence classifier: train, diagnose.", no_args_is_help=True)


@bayes_app.command("diagnose")
def diagnose(
    config: Path = typer.Option(..., "--config", "-c", help="YAML config."),
    output: Path = typer.Option(
        Path("runs/bayes-diagnose"),
        "--output",
        "-o",
        help="Run directory for the three diagnostic runs.",
    ),
) -> None:
    """Tiny model, configured model, configured model without KL: data, KL or model?"""
    from termwise.recipes.bayes_clf.config import BayesClfConfig
    from termwise.recipes.bayes_clf.recipe import diagnose as run_diagnose

    settings = load_yaml_config(config, BayesClfConfig)
    run_diagnose(settings, output, Console())


@bayes_app.command("train")
def train(
    config: Path = typer.Option(..., "--config", "-c", help="YAML config."),
    output: Path = typer.Option(..., "--output", "-o", help="Run directory."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint."),
) -> None:
    """Train the configured model with the health monitor; evaluate on the test period."""
    from termwise.recipes.bayes_clf.config import BayesClfConfig
    from termwise.recipes.bayes_clf.data import load_sequences
    from termwise.recipes.bayes_clf.recipe import print_diagnosis
    from termwise.recipes.bayes_clf.recipe import train as train_run

    settings = load_yaml_config(config, BayesClfConfig)
    console = Console()
    data = load_sequences(settings.data, settings.trainer.seed)
    result = train_run(settings, data, output, console, "configured", resume=resume)
    print_diagnosis([result], "see the findings above", console)
