"""Command-line options every system's CLI declares the same way (one declaration each)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

CONFIG: Path = typer.Option(..., "--config", "-c", help="YAML config.")
CONFIG_OUTPUT: Path = typer.Option(..., "--output", "-o", help="Where to write the YAML.")
RUN_DIR: Path = typer.Option(..., "--output", "-o", help="Run directory.")
RESUME: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint.")
OVERWRITE: bool = typer.Option(
    False, "--overwrite", help="Replace the run already in the run directory."
)
FORCE: bool = typer.Option(False, "--force", help="Overwrite an existing OUTPUT.")
MODEL_DIR: Path = typer.Option(
    ..., "--model", "-m", help="A saved model: OUTPUT/model of a btrm or pref run."
)
BEST_MODEL_DIR: Path = typer.Option(
    ..., "--model", "-m", help="A saved model: OUTPUT/model of a training run."
)
SCORE_INPUT: Path = typer.Option(..., "--input", "-i", help="JSONL records to score.")
SCORE_OUTPUT: Path = typer.Option(..., "--output", "-o", help="JSONL with scores added.")
AUTO_FIX: int = typer.Option(
    0,
    "--auto-fix",
    min=0,
    help="When the run ends with findings that suggest config values, rerun with them "
    "applied (termwise health fix), up to N times, each in OUTPUT/fixN (never by default).",
)


def check_eval_files(
    data: Path, model: Path, json_out: Path | None, force: bool, command: str
) -> None:
    """An eval command's files, before any model loads: ``data`` is readable, and ``--json``
    overwrites no input and, without ``--force``, only a results file ``command`` wrote
    (its marker says so: :func:`termwise.data.outputs.is_own_output`)."""
    from termwise.data.jsonl import check_output, check_readable
    from termwise.trainer.run_dir import model_inputs

    check_readable(data, "data file")
    if json_out is not None:
        inputs = (data, *model_inputs(model))
        check_output(json_out, *inputs, option="--json", force=force, owner=command)


def read_config(path: Path, module: str, name: str) -> Any:
    """The YAML config at ``path`` as the recipe's config class ``module.name`` (imported
    only when a command runs)."""
    import importlib

    from termwise.config import load_yaml_config

    return load_yaml_config(path, getattr(importlib.import_module(module), name))


def train_command(
    app: typer.Typer, doc: str, recipe: str, load_config: Callable[[Path], Any]
) -> None:
    """Register ``train -c CONFIG -o RUN_DIR [--resume] [--overwrite] [--auto-fix N]`` on
    ``app``: every system trains with the same flags, through
    :func:`termwise.trainer.recipe.run_recipe` on the ``recipe`` module (imported only
    when it runs)."""

    def run(config: Path, output: Path, resume: bool, overwrite: bool) -> None:
        import importlib

        from rich.console import Console

        from termwise.trainer.run_dir import check_replaceable

        settings = load_config(config)
        if overwrite and output.is_dir():  # the config file is an input the run must keep
            check_replaceable(output, [config])
        from termwise.trainer.recipe import run_recipe

        module: Any = importlib.import_module(recipe)
        run_recipe(module, settings, output, Console(), resume=resume, overwrite=overwrite)

    def train(
        config: Path = CONFIG,
        output: Path = RUN_DIR,
        resume: bool = RESUME,
        overwrite: bool = OVERWRITE,
        auto_fix: int = AUTO_FIX,
    ) -> None:
        run(config, output, resume, overwrite)
        if auto_fix:
            auto_fix_runs(config, output, auto_fix, run)

    train.__doc__ = doc
    app.command("train")(train)


def auto_fix_runs(
    config: Path, output: Path, limit: int, run: Callable[[Path, Path, bool, bool], None]
) -> None:
    """Rerun with each run's fixable findings applied, then print what each run found."""
    from rich.console import Console
    from rich.table import Table

    from termwise.data.jsonl import write_bytes_atomic
    from termwise.health.findings import HEALTH_FILE, read_findings
    from termwise.health.fix import fix_config

    def warnings_of(run_dir: Path) -> str:
        path = run_dir / HEALTH_FILE
        found = read_findings(path)[0] if path.is_file() else []
        return ", ".join(sorted({f.code for f in found if f.severity != "info"})) or "none"

    rows = [(str(output), warnings_of(output), "-", key_metric(output))]
    previous = output
    for attempt in range(1, limit + 1):
        fix = fix_config(previous)
        if not fix.applied:
            break
        fixed_config = output / f"fix{attempt}.yaml"
        write_bytes_atomic(fixed_config, fix.text.encode("utf-8"))
        previous = output / f"fix{attempt}"
        run(fixed_config, previous, False, True)
        changes = "; ".join(
            f"{c['config_key']} {c.get('from')} -> {c['to']}" for _, c in fix.applied
        )
        rows.append((str(previous), warnings_of(previous), changes, key_metric(previous)))
    table = Table(title="--auto-fix: runs, their findings, the changes applied")
    for column in ("run", "findings (warnings)", "changes applied", "key metric"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


# The metric a run is judged by, in the order looked for in report.json's held-out metrics.
KEY_METRICS = ("val_loss", "test_loss", "val_nll", "test_accuracy", "val_accuracy", "train_loss")


def key_metric(run_dir: Path) -> str:
    """``name value`` of the run's key metric, or ``-`` when it wrote none: report.json's
    held-out metrics, else the one its recipe named in eval.json (``key_metric``, written
    by :func:`termwise.trainer.recipe.run_recipe`)."""
    import orjson

    def read(name: str) -> dict[str, Any]:
        try:
            data = orjson.loads((run_dir / name).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    metrics = read("report.json").get("metrics") or {}
    for name in KEY_METRICS:
        if isinstance(metrics.get(name), int | float):
            return f"{name} {metrics[name]:.4g}"
    found = read("eval.json").get("key_metric")
    if isinstance(found, dict) and isinstance(found.get("value"), int | float):
        return f"{found.get('name')} {found['value']:.4g}"
    return "-"
