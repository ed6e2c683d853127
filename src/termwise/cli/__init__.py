"""The ``termwise`` command line: each system's commands, assembled. User errors print one
line and exit with status 2."""

from __future__ import annotations

import sys

import typer

from termwise import __version__
from termwise.cli.errors import run_cli
from termwise.health.cli import health_app
from termwise.probes.cli import probe
from termwise.recipes.bayes_clf.cli import bayes_app
from termwise.recipes.btrm.cli import btrm_app
from termwise.recipes.free_bits_demo.cli import demo_app
from termwise.recipes.lvm.cli import lvm_app
from termwise.recipes.pref.cli import pref_app
from termwise.recipes.vae.cli import vae_app
from termwise.report.cli import report
from termwise.serve.cli import serve

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
app.add_typer(vae_app, name="vae")
app.add_typer(lvm_app, name="lvm")
app.command("serve")(serve)
app.command("report")(report)


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
    sys.exit(run_cli(app))
