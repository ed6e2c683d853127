"""``termwise btrm``: the multi-head Bradley-Terry reward model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from termwise import cli_options as opts
from termwise.config import write_config
from termwise.errors import TermwiseUserError
from termwise.sample_data import sample_path

if TYPE_CHECKING:
    from termwise.recipes.btrm.config import BtrmConfig

btrm_app = typer.Typer(help="Multi-head Bradley-Terry reward model.", no_args_is_help=True)
BUNDLED = sample_path("corpora")


def _config(path: Path) -> BtrmConfig:
    return opts.read_config(path, "termwise.recipes.btrm.config", "BtrmConfig")


@btrm_app.command("gen-config")
def gen_config(
    output: Path = opts.CONFIG_OUTPUT,
    data_dir: Path = typer.Option(BUNDLED, help="Corpora directory (e.g. ../shared/data/corpora)."),
    max_steps: int | None = typer.Option(
        None, min=1, help="Training steps in the written config (default: about 14 CPU minutes)."
    ),
    force: bool = opts.FORCE,
) -> None:
    """Write a complete, commented default config over the corpora in DATA_DIR."""
    from termwise.recipes.btrm.config import DEFAULT_STEPS, HEADER, BtrmConfig, default_config

    config = default_config(data_dir, max_steps or DEFAULT_STEPS)
    write_config(output, config, BtrmConfig, HEADER, force)
    Console().print(f"wrote {output}")


@btrm_app.command("test-decoders")
def test_decoders(config: Path = opts.CONFIG) -> None:
    """Per source: rows per tier, the text field used, bad lines and two short samples.
    Exits 2 if any source yields nothing."""
    from termwise.recipes.btrm.data import head_sources, heldout_summary
    from termwise.recipes.btrm.sources import read_source

    settings = _config(config)
    console = Console()
    table = Table(title="Sources")
    for column in (
        "source",
        "tier filter",
        "text field",
        "rows",
        "kept per tier",
        "bad",
        "held out",
        "samples",
    ):
        table.add_column(column, overflow="fold")
    seen: set[str] = set()
    empty = []
    for positives, negatives in head_sources(settings):
        for source in [*positives, *negatives]:
            if source.key in seen:
                continue
            seen.add(source.key)
            records, report = read_source(
                source.path,
                source.text_field,
                source.tiers,
                "skip",
                settings.max_rows_per_source,
                source.group_field,
            )
            field = f"{report.text_field}{' (auto)' if report.field_was_auto else ''}"
            kept = ", ".join(f"{t}: {n}" for t, n in sorted(report.kept.items()))
            samples = "\n".join(r.text[:70].replace("\n", " / ") for r in records[:2])
            bad = f"{len(report.bad)}" + (f"\n{report.bad[0]}" if report.bad else "")
            table.add_row(
                str(source.path),
                ",".join(source.tiers or []) or "-",
                field,
                str(report.rows),
                kept or "-",
                bad,
                heldout_summary(records, source, settings.heldout_fraction, settings.heldout_fold),
                samples,
            )
            if not records:
                empty.append(str(source.path))
    console.print(table)
    if empty:
        raise TermwiseUserError(f"sources that yield nothing: {', '.join(empty)}", path=config)


@btrm_app.command("sample-inputs")
def sample_inputs(
    config: Path = opts.CONFIG,
    per_head: int = typer.Option(2, "-n", min=1, help="Samples per head and role."),
) -> None:
    """What the model sees (meta-prompt + text, tokenised and truncated) per head and role."""
    import numpy as np

    from termwise.recipes.btrm.data import TIER_NAMES
    from termwise.recipes.btrm.prepared import prepare

    settings = _config(config)
    prepared = prepare(settings)
    table, console = prepared.table, Console()
    rng = np.random.default_rng(0)
    for h, head in enumerate(table.heads):
        roles = {"positive": np.flatnonzero(table.positive[:, h])}
        for code, name in TIER_NAMES.items():
            roles[name] = np.flatnonzero(table.negative_tier[:, h] == code)
        for role, rows in roles.items():
            for row in rng.choice(rows, size=min(per_head, len(rows)), replace=False):
                decoded = prepared.tokenizer.decode(prepared.ids[row])
                console.rule(f"{head} | {role} | {len(prepared.ids[row])} tokens")
                console.print(decoded, markup=False)


opts.train_command(
    btrm_app,
    "Train, then evaluate every head on held-out rows and save OUTPUT/model.",
    "termwise.recipes.btrm.recipe",
    _config,
)


@btrm_app.command("score")
def score(
    model: Path = opts.MODEL_DIR,
    input_path: Path = typer.Option(
        ...,
        "--input",
        "-i",
        help="JSONL records to score; or a corpus: a folder or a glob of .jsonl/.parquet "
        "shards, scored on Ray Data into a folder of shards (resumable).",
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="JSONL with scores added; for a corpus, a folder of shards."
    ),
    text_field: str = typer.Option(
        "auto", help="Field holding the text (auto: text, prose, content, response)."
    ),
    batch_size: int = typer.Option(64, min=1, help="Texts per forward pass, at most."),
    max_tokens: int = typer.Option(
        4096,  # score.SCORE_TOKENS (a test keeps them equal; torch is not imported here)
        min=1,
        help="Padded tokens per forward pass, at most (smaller is cache-friendly).",
    ),
    chunk: int = typer.Option(2048, min=1, help="Records read, scored and written at a time."),
    bf16: bool = typer.Option(
        False, "--bf16", help="bfloat16 autocast: ~2x faster on AMX CPUs, scores within ~1e-2."
    ),
    int8: bool = typer.Option(
        False,
        "--int8",
        help="CPU fast path: the backbone's Linear layers as dynamic int8 (speed-up and score "
        "change in docs/benchmarks.md).",
    ),
    actors: int | None = typer.Option(
        None, min=1, help="Corpus: scoring actors (default: one per CPU, or per GPU)."
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="Corpus: a running Ray cluster (auto, or host:port); default: a local one.",
    ),
    on_bad_record: str = typer.Option(
        "error",
        help="Corpus: a record without a text stops the job (error) or is skipped and counted "
        "(skip).",
    ),
    force: bool = opts.FORCE,
) -> None:
    """Add {"scores": {head: value}} to every record, in input order."""
    from termwise.recipes.btrm.corpus import is_corpus

    console = Console()
    if is_corpus(input_path):
        _score_corpus(
            model,
            input_path,
            output,
            text_field,
            actors,
            ray_address,
            on_bad_record,
            bf16,
            int8,
            force,
            console,
        )
        return
    from termwise.recipes.btrm.score import score_file

    count = score_file(
        model,
        input_path,
        output,
        text_field,
        batch_size,
        chunk,
        console,
        bf16,
        max_tokens,
        force,
        int8,
    )
    console.print(f"scored {count} records -> {output}")


def _score_corpus(
    model: Path,
    inputs: Path,
    output: Path,
    text_field: str,
    actors: int | None,
    address: str | None,
    on_bad_record: str,
    bf16: bool,
    int8: bool,
    force: bool,
    console: Console,
) -> None:
    from termwise.recipes.btrm.corpus import CorpusSettings, score_corpus

    if on_bad_record not in ("error", "skip"):
        raise TermwiseUserError(f"--on-bad-record: expected error or skip, got {on_bad_record!r}")
    settings = CorpusSettings(
        None if text_field == "auto" else text_field,
        actors,
        address,
        on_bad_record,
        bf16,
        int8,
        force,
    )
    results = score_corpus(model, inputs, output, settings, console)
    rows = sum(r.rows_out for r in results)
    bad = sum(len(r.bad) for r in results)
    console.print(
        f"scored {rows} records in {len(results)} shards -> {output}"
        + (f" ({bad} bad records skipped, listed in the manifest)" if bad else ""),
        markup=False,
    )


@btrm_app.command("export")
def export(
    model: Path = opts.MODEL_DIR,
    output: Path = typer.Option(..., "--output", "-o", help="The folder to write (a new one)."),
    neural_only: bool = typer.Option(
        False,
        "--neural-only",
        help="Export a model with a lexical branch without it (its scores then differ).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an earlier export at OUTPUT."),
) -> None:
    """A plain Hugging Face directory that transformers, TRL and OpenRLHF load without
    termwise: AutoModelForSequenceClassification.from_pretrained(OUTPUT,
    trust_remote_code=True), one logit per head (label names in its config)."""
    from termwise.recipes.btrm.score import export_model

    console = Console()
    for note in export_model(model, output, neural_only, force):
        console.print(f"note: {note}", markup=False)
    console.print(f"exported -> {output}", markup=False)
