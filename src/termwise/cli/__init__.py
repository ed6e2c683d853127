"""The ``termwise`` command line. User errors print one line and exit with status 2."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from termwise import __version__
from termwise.cli.bayes_clf import bayes_app
from termwise.cli.btrm import btrm_app
from termwise.cli.demo import demo_app
from termwise.cli.health import health_app
from termwise.cli.pref import pref_app
from termwise.cli.probe import probe
from termwise.errors import TermwiseUserError, TrainingDiverged

app = typer.Typer(
    name="termwise",
    help="Training objectives that explain themselves.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(health_app, name="health")
app.add_typer(demo_app, name="demo")
app.command("probe")(probe)
app.add_typer(bayes_app, name="bayes-clf")
app.add_typer(btrm_app, name="btrm")
app.add_typer(pref_app, name="pref")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"termwise {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """termwise: loss terms, schedules, per-term shares and a health monitor."""


def main() -> None:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        app()
    except TermwiseUserError as error:
        err.print(f"error: {error}", markup=False)
        sys.exit(2)
    except TrainingDiverged as error:
        err.print(f"training stopped: {error}", markup=False)
        sys.exit(1)
