"""``termwise vae``: a variational bottleneck with free bits, a KL curriculum, a teacher."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from termwise import cli_options as opts
from termwise.config import load_yaml_config, write_config
from termwise.sample_data import sample_path

if TYPE_CHECKING:
    from termwise.recipes.vae.config import VaeConfig

vae_app = typer.Typer(
    help="Variational bottleneck: free bits, KL curriculum, teacher term.", no_args_is_help=True
)
BUNDLED = sample_path()


def _config(path: Path) -> VaeConfig:
    from termwise.recipes.vae.config import VaeConfig

    return load_yaml_config(path, VaeConfig)


@vae_app.command("gen-config")
def gen_config(
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the YAML."),
    data_dir: Path = typer.Option(
        BUNDLED, help="Data directory with sequences/*.jsonl (e.g. ../shared/data)."
    ),
    task: str = typer.Option("reconstruct", help="reconstruct or classify."),
    force: bool = opts.FORCE,
) -> None:
    """Write a complete config, every field commented with its help text."""
    from termwise.recipes.vae.config import VaeConfig, default_config

    write_config(output, default_config(data_dir, task), VaeConfig, force=force)
    Console().print(f"wrote {output}")


@vae_app.command("build-data")
def build_data(config: Path = opts.CONFIG) -> None:
    """Vocabulary, splits by document and teacher targets, cached; prints the counts."""
    from termwise.recipes.vae.data import build_data as build

    build(_config(config), Console())


def _train(config: Path, output: Path, resume: bool, overwrite: bool) -> None:
    from termwise.recipes.vae.recipe import train

    train(_config(config), output, Console(), resume=resume, overwrite=overwrite)


opts.train_command(
    vae_app,
    "Train through the curriculum; the best model (early stopping) goes to OUTPUT/best.",
    _train,
)
