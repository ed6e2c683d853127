"""``termwise lvm``: next sentence-vector prediction with a directional margin."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from termwise import cli_options as opts
from termwise.config import write_config
from termwise.sample_data import sample_path

if TYPE_CHECKING:
    from termwise.recipes.lvm.config import LvmConfig

BUNDLED = sample_path()
DIAGNOSE = "lvm diagnose-data"  # the command named in the marker of its --json
lvm_app = typer.Typer(
    help="Next-vector prediction: directional margin, five gates.", no_args_is_help=True
)


def _config(path: Path) -> LvmConfig:
    return opts.read_config(path, "termwise.recipes.lvm.config", "LvmConfig")


@lvm_app.command("gen-config")
def gen_config(
    output: Path = opts.CONFIG_OUTPUT,
    data_dir: Path = typer.Option(
        BUNDLED, help="Data directory with sequences/ and corpora/ (e.g. ../shared/data)."
    ),
    documents: str = typer.Option(
        "wikitext",
        help="wikitext: the sequences documents (OOD: Brown news and learned). prose-mix: "
        "documents rebuilt from the Brown, movie-review and C4 passages of corpora/ "
        "(OOD: the WikiText sequences): 20 times the documents, 2 times the windows. On "
        "both the default still trails copy-last; its learning curve puts the crossing "
        "near 18,000 such documents (docs/lvm.md).",
    ),
    force: bool = opts.FORCE,
) -> None:
    """Write a complete config, every field commented with its help text."""
    from termwise.recipes.lvm.config import LvmConfig, default_config

    write_config(output, default_config(data_dir, documents), LvmConfig, force=force)
    Console().print(f"wrote {output}")


@lvm_app.command("build-data")
def build_data(config: Path = opts.CONFIG) -> None:
    """Embed every sentence once (cached by model and data)."""
    from termwise.recipes.lvm.data import build_corpus

    build_corpus(_config(config).data, Console())


@lvm_app.command("diagnose-data")
def diagnose_data(
    config: Path = opts.CONFIG,
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report here."),
    force: bool = opts.FORCE,
) -> None:
    """Forward/backward asymmetry in the raw documents and in the windows, before training."""
    from termwise.data.jsonl import check_output, write_json
    from termwise.recipes.lvm.data import load_corpus, make_windows
    from termwise.recipes.lvm.diagnose import diagnose, print_diagnosis
    from termwise.trainer.run_dir import input_paths

    settings = _config(config)
    if json_out is not None:
        inputs = (config, *input_paths(settings))
        check_output(json_out, *inputs, option="--json", force=force, owner=DIAGNOSE)
    console = Console()
    corpus = load_corpus(settings.data, console)
    documents = corpus.documents("train") + corpus.documents("val")
    windows = make_windows(corpus, documents, settings.data.context, settings.data.offset)
    report = diagnose(corpus, documents, windows, settings.data.offset)
    print_diagnosis(report, console)
    if json_out is not None:
        write_json(json_out, report, owner=DIAGNOSE)


opts.train_command(
    lvm_app,
    "Train (gates A and B every epoch), then all five gates on OUTPUT/model.",
    "termwise.recipes.lvm.recipe",
    _config,
)


@lvm_app.command("eval")
def evaluate(
    model: Path = opts.BEST_MODEL_DIR,
    data: Path = typer.Option(
        ...,
        "--data",
        "-d",
        help="JSONL documents {sentences: [...]}, or corpus passages {id, text}.",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the gates here."),
    force: bool = opts.FORCE,
) -> None:
    """All five gates on FILE (E against the training run's OOD files, when it had some)."""
    from termwise.data.jsonl import write_json
    from termwise.recipes.lvm.evaluate import evaluate_file
    from termwise.recipes.lvm.gates import print_gates

    opts.check_eval_files(data, model, json_out, force, "lvm eval")
    report = evaluate_file(model, data, Console())
    print_gates(report, Console(), title=f"Gates of {model} on {data}")
    if json_out is not None:
        write_json(json_out, report, owner="lvm eval")
