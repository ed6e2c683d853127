"""``termwise pref``: pairwise preference models (bt, gpm, bayes_gpm)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from termwise import cli_options as opts
from termwise.config import load_yaml_config, write_config
from termwise.sample_data import sample_path

if TYPE_CHECKING:
    from termwise.recipes.pref.config import PrefConfig

pref_app = typer.Typer(
    help="Pairwise preference models: Bradley-Terry, GPM, Bayesian GPM.", no_args_is_help=True
)
BUNDLED = sample_path("preferences")


def _config(path: Path) -> PrefConfig:
    from termwise.recipes.pref.config import PrefConfig

    return load_yaml_config(path, PrefConfig)


@pref_app.command("gen-config")
def gen_config(
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the YAML."),
    kind: str = typer.Option("bt", "--kind", "--head", help="bt, gpm or bayes_gpm."),
    data_dir: Path = typer.Option(
        BUNDLED, help="Directory with train.jsonl and dev.jsonl (e.g. ../shared/data/preferences)."
    ),
    max_steps: int = typer.Option(500, min=1, help="Training steps in the written config."),
    force: bool = opts.FORCE,
) -> None:
    """Write a complete config, every field commented with its help text."""
    from termwise.errors import TermwiseUserError, suggest
    from termwise.recipes.pref.config import KINDS, PrefConfig

    if kind not in KINDS:
        raise TermwiseUserError(
            f"--kind must be bt, gpm or bayes_gpm, got {kind!r}{suggest(kind, KINDS)}"
        )
    if not (data_dir / "train.jsonl").is_file():
        raise TermwiseUserError("no train.jsonl here", path=data_dir)
    dev = data_dir / "dev.jsonl"
    config = PrefConfig.model_validate(
        {
            "kind": kind,
            "train_path": data_dir / "train.jsonl",
            "dev_path": dev if dev.is_file() else None,
            "trainer": {"max_steps": max_steps, "batch_size": 8, "health_every": 25},
        }
    )
    write_config(output, config, PrefConfig, force=force)
    Console().print(f"wrote {output}")


def _train(config: Path, output: Path, resume: bool, overwrite: bool) -> None:
    from termwise.recipes.pref.recipe import train

    train(_config(config), output, Console(), resume=resume, overwrite=overwrite)


opts.train_command(
    pref_app, "Train, save OUTPUT/model, and evaluate on dev_path when it is set.", _train
)
