"""``termwise vae``: a variational bottleneck with free bits, a KL curriculum, a teacher."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from termwise import cli_options as opts
from termwise.config import write_config
from termwise.sample_data import sample_path

if TYPE_CHECKING:
    from termwise.recipes.vae.config import VaeConfig

vae_app = typer.Typer(
    help="Variational bottleneck: free bits, KL curriculum, teacher term.", no_args_is_help=True
)
BUNDLED = sample_path()


def _config(path: Path) -> VaeConfig:
    return opts.read_config(path, "termwise.recipes.vae.config", "VaeConfig")


@vae_app.command("gen-config")
def gen_config(
    output: Path = opts.CONFIG_OUTPUT,
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


opts.train_command(
    vae_app,
    "Train through the curriculum; the best model (early stopping) goes to OUTPUT/model.",
    "termwise.recipes.vae.recipe",
    _config,
)


@vae_app.command("eval")
def evaluate(
    model: Path = opts.BEST_MODEL_DIR,
    data: Path = typer.Option(..., "--data", "-d", help="JSONL sentences or documents."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results here."),
    samples: int = typer.Option(
        20,
        min=1,
        help="Importance samples of the NLL bound: the cost is samples x sentences decoder "
        "passes (20 x 21k sentences is minutes on 2 CPU cores).",
    ),
    force: bool = opts.FORCE,
) -> None:
    """Reconstruction NLL, importance-weighted NLL and perplexity, KL, MI, active units."""
    from termwise.data.jsonl import write_json
    from termwise.recipes.vae.evaluate import evaluate_file, print_metrics

    opts.check_eval_files(data, model, json_out, force, "vae eval")
    console = Console()
    results = evaluate_file(model, data, samples, console)
    print_metrics(results, console, title=f"{model} on {data}")
    if json_out is not None:
        write_json(json_out, results, owner="vae eval")


@vae_app.command("sample")
def sample(
    model: Path = opts.BEST_MODEL_DIR,
    count: int = typer.Option(10, "-n", min=1, help="Sentences from the prior."),
    interpolate: tuple[str, str] | None = typer.Option(
        None, help="Two sentences: decode along the line between their latents."
    ),
    temperature: float = typer.Option(0.0, min=0.0, help="0: greedy decoding."),
    seed: int = typer.Option(0, help="Seeds the prior draws."),
) -> None:
    """Decode sentences from the prior, or between two sentences."""
    from termwise.recipes.vae.model import load_vae
    from termwise.recipes.vae.sample import interpolate as between
    from termwise.recipes.vae.sample import sample_prior

    loaded, vocab, _ = load_vae(model)
    console = Console()
    if interpolate is not None:
        lines = between(loaded, vocab, interpolate[0], interpolate[1])
    else:
        lines = sample_prior(loaded, vocab, count, temperature, seed)
    for line in lines:
        console.print(line, markup=False)
