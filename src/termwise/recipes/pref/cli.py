"""``termwise pref``: pairwise preference models (bt, gpm, bayes_gpm)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from termwise import cli_options as opts
from termwise.config import write_config
from termwise.errors import TermwiseUserError
from termwise.sample_data import sample_path

if TYPE_CHECKING:
    from termwise.recipes.pref.config import PrefConfig

pref_app = typer.Typer(
    help="Pairwise preference models: Bradley-Terry, GPM, Bayesian GPM.", no_args_is_help=True
)
BUNDLED = sample_path("preferences")


def _config(path: Path) -> PrefConfig:
    return opts.read_config(path, "termwise.recipes.pref.config", "PrefConfig")


@pref_app.command("gen-config")
def gen_config(
    output: Path = opts.CONFIG_OUTPUT,
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


opts.train_command(
    pref_app,
    "Train, save OUTPUT/model, and evaluate on dev_path when it is set.",
    "termwise.recipes.pref.recipe",
    _config,
)


NO_CALIBRATION = typer.Option(
    False,
    "--no-calibration",
    help="Raw probabilities (no temperature or power), not the model's calibrated ones.",
)


@pref_app.command("eval")
def evaluate(
    model: Path = opts.MODEL_DIR,
    data: Path = typer.Option(..., "--data", "-d", help="JSONL pairs to evaluate."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the results here."),
    samples: int | None = typer.Option(
        None, "--samples", min=1, help="Monte Carlo draws for bayes_gpm (default: the model's)."
    ),
    no_calibration: bool = NO_CALIBRATION,
    force: bool = opts.FORCE,
) -> None:
    """Accuracy per category and subset (ties wrong), the mean over subsets the model never
    trained on, NLL, Brier, ECE before and after the model's calibration, a reliability
    table, uncertainty AUROC."""
    from termwise.data.jsonl import write_json
    from termwise.recipes.pref.calibration import RAW
    from termwise.recipes.pref.dev import evaluate_file as evaluate_pairs
    from termwise.recipes.pref.eval import (
        calibration_coverage,
        print_coverage,
        print_results,
        print_unseen,
        unseen_subset_accuracy,
    )
    from termwise.recipes.pref.model import load_preference_model

    opts.check_eval_files(data, model, json_out, force, "pref eval")
    loaded, tokenizer, manifest = load_preference_model(model)
    n_samples = samples or manifest.n_samples
    calibration = RAW if no_calibration else manifest.fitted_calibration()
    results = evaluate_pairs(
        loaded, tokenizer, data, manifest.max_length, n_samples, calibration=calibration
    )
    console = Console()
    print_results(results, console, title=f"{loaded.kind} on {data}")
    results["unseen_subsets"] = unseen_subset_accuracy(
        manifest.trained_subsets, results["categories"]
    )
    print_unseen(results["unseen_subsets"], console)
    if not no_calibration:
        results["calibration_source"] = calibration_coverage(
            manifest.calibration, results["categories"]
        )
        print_coverage(results["calibration_source"], console)
    if json_out is not None:
        write_json(json_out, results, owner="pref eval")


@pref_app.command("calibrate")
def calibrate(
    model: Path = opts.MODEL_DIR,
    data: Path = typer.Option(
        ..., "--data", "-d", help="JSONL pairs the model did not train on (e.g. a dev split)."
    ),
    samples: int | None = typer.Option(
        None, "--samples", min=1, help="Monte Carlo draws for bayes_gpm (default: the model's)."
    ),
) -> None:
    """Fit the model's temperature and power on DATA (NLL, L-BFGS on the scores) and save
    them in the model's manifest; the weights are not touched and accuracy cannot change."""
    from termwise.data.jsonl import check_output, check_readable
    from termwise.recipes.pref.calibration import fit_calibration
    from termwise.recipes.pref.dev import dev_scores
    from termwise.recipes.pref.eval import category_subsets
    from termwise.recipes.pref.model import MANIFEST, load_preference_model, store_calibration

    check_readable(data, "data file")
    if model.is_dir():  # the manifest is rewritten after the fit: check now, not after it
        check_output(model / MANIFEST, data, option="--model", force=True)
        if (model / MANIFEST).exists() and not os.access(model / MANIFEST, os.W_OK):
            raise TermwiseUserError("--model: the manifest is read-only", path=model / MANIFEST)
    loaded, tokenizer, manifest = load_preference_model(model)
    draws = samples or manifest.n_samples
    pairs, scores, _ = dev_scores(loaded, tokenizer, data, manifest.max_length, draws)
    if scores.shape[1] == 0:
        raise TermwiseUserError("no pairs to fit a calibration on", path=data)
    fit = fit_calibration(scores)
    was = manifest.fitted_calibration()
    if fit.one_sided:
        raise TermwiseUserError(
            f"no calibration can be fitted on {fit.pairs} pair(s) that all fall on one side "
            f"(or tie); the saved one (temperature {was.temperature:.3g}, power "
            f"{was.power:.3g}) is kept unchanged",
            path=data,
        )
    store_calibration(model, fit, data, category_subsets(pairs))
    console = Console()
    console.print(f"{fit.summary()} (was temperature {was.temperature:.3g}, power {was.power:.3g})")
    console.print(f"saved in {model}")


@pref_app.command("score")
def score(
    model: Path = opts.MODEL_DIR,
    input_path: Path = opts.SCORE_INPUT,
    output: Path = opts.SCORE_OUTPUT,
    batch_size: int = typer.Option(32, min=1, help="Pairs per forward pass."),
    no_calibration: bool = NO_CALIBRATION,
    force: bool = opts.FORCE,
) -> None:
    """Pairs get {"preference": {"p", "std"}} under the model's calibration; single
    responses (bt) get {"reward"} (a raw score: calibration only applies to pairs)."""
    from termwise.recipes.pref.score import score_file

    count = score_file(
        model, input_path, output, batch_size, calibrated=not no_calibration, force=force
    )
    Console().print(f"scored {count} records -> {output}")


@pref_app.command("export")
def export(
    model: Path = opts.MODEL_DIR,
    output: Path = typer.Option(..., "--output", "-o", help="The folder to write (a new one)."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier export at OUTPUT."),
) -> None:
    """A bt model as a plain Hugging Face directory that transformers, TRL and OpenRLHF load
    without termwise: AutoModelForSequenceClassification.from_pretrained(OUTPUT,
    trust_remote_code=True), one logit (the reward). gpm and bayes_gpm are refused."""
    from termwise.recipes.pref.score import export_model

    export_model(model, output, force)
    Console().print(f"exported -> {output}", markup=False)
