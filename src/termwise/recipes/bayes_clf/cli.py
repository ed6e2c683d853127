"""``termwise bayes-clf``: a Bayesian sequence classifier, and why it will not learn."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from termwise import cli_options as opts
from termwise.config import load_yaml_config

if TYPE_CHECKING:
    from termwise.recipes.bayes_clf.config import BayesClfConfig

bayes_app = typer.Typer(help="Bayesian sequence classifier: train, diagnose.", no_args_is_help=True)


@bayes_app.command("diagnose")
def diagnose(
    config: Path = opts.CONFIG,
    output: Path = typer.Option(
        Path("runs/bayes-diagnose"),
        "--output",
        "-o",
        help="Run directory for the three diagnostic runs.",
    ),
    overwrite: bool = opts.OVERWRITE,
) -> None:
    """Tiny model, configured model, configured model without KL: data, KL or model?"""
    from termwise.recipes.bayes_clf.config import BayesClfConfig
    from termwise.recipes.bayes_clf.recipe import diagnose as run_diagnose
    from termwise.recipes.bayes_clf.verdict import DIAGNOSE_OUTPUTS
    from termwise.trainer.run_dir import input_paths, prepare_run_dir, write_run_config
    from termwise.trainer.run_lock import run_lock

    settings = load_yaml_config(config, BayesClfConfig)
    inputs = [config, *input_paths(settings)]
    with run_lock(output):
        prepare_run_dir(output, False, overwrite, inputs, "bayes_clf", DIAGNOSE_OUTPUTS)
        write_run_config(output, settings)
        run_diagnose(settings, output, Console())


def _config(path: Path) -> BayesClfConfig:
    return opts.read_config(path, "termwise.recipes.bayes_clf.config", "BayesClfConfig")


opts.train_command(
    bayes_app,
    "Train the configured model with the health monitor; evaluate on the test period.",
    "termwise.recipes.bayes_clf.recipe",
    _config,
)
