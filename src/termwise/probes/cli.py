"""``termwise probe``: do these features predict this target at all?"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from termwise.errors import TermwiseUserError

if TYPE_CHECKING:  # the probe stack (pandas, scikit-learn) loads only when a probe runs
    import pandas as pd

    from termwise.probes.run import ProbeReport, ProbeSettings


class Task(StrEnum):
    auto = "auto"
    classification = "classification"
    regression = "regression"


class OnMissing(StrEnum):
    error = "error"
    drop = "drop"


def probe(
    data: Path = typer.Argument(..., help="CSV, TSV, Parquet or JSONL table."),
    target: str | None = typer.Option(
        None,
        "--target",
        "-t",
        help="Target column (with --ohlcv: one built target, "
        "e.g. direction_5; default all of them).",
    ),
    features: str | None = typer.Option(
        None, help="Comma-separated feature columns (default: every numeric column)."
    ),
    time_col: str | None = typer.Option(
        None, help="Time column: chronological split, time-respecting shuffles."
    ),
    group_col: str | None = typer.Option(
        None, help="Group column: no group on both sides of the split."
    ),
    ohlcv: bool = typer.Option(
        False,
        "--ohlcv",
        help="Treat DATA as OHLCV bars: build features and candidate "
        "targets, probe each, rank them.",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full report here."),
    permutations: int = typer.Option(200, min=100, help="Shuffles per statistic's null."),
    test_fraction: float = typer.Option(0.25, min=0.05, max=0.5, help="Held-out share."),
    task: Task = typer.Option(Task.auto, help="Force classification or regression."),
    on_missing: OnMissing = typer.Option(
        OnMissing.error, help="Rows with missing values: stop (error) or drop and count."
    ),
    seed: int = typer.Option(0, help="Seeds splits, shuffles, subsamples and models."),
    null_draws: int = typer.Option(
        3,
        min=0,
        help="With --ohlcv: random walks the whole pipeline also runs on, to tell "
        "'predictable beyond a random walk' from 'predictable by construction' (0: off).",
    ),
    verbose: bool = typer.Option(False, help="With --ohlcv: the full report of every target."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --json file."),
) -> None:
    """Probe whether the features carry signal about the target, against shuffled labels."""
    from termwise.data.jsonl import check_output
    from termwise.data.tabular import read_table, select
    from termwise.probes.report import print_ranking, print_report, write_json
    from termwise.probes.run import ProbeSettings, probe_arrays

    console = Console()
    settings = ProbeSettings(
        permutations=permutations, test_fraction=test_fraction, seed=seed, task=task.value
    )
    if json_out is not None:  # a bad output path fails now, not after the probe
        check_output(json_out, data, option="--json", force=force, owner="probe")
    frame = read_table(data)
    if ohlcv:
        reports = _probe_ohlcv(frame, data, target, settings, console, verbose, null_draws)
        print_ranking(reports, console)
    else:
        if target is None:
            raise TermwiseUserError("--target is required (or use --ohlcv)", path=data)
        table = select(
            frame,
            data,
            target,
            features=[f.strip() for f in features.split(",")] if features else None,
            time_col=time_col,
            group_col=group_col,
            on_missing=on_missing.value,
        )
        try:
            report = probe_arrays(
                table.features,
                table.x,
                table.y,
                target,
                settings,
                times=table.times,
                groups=table.groups,
                dropped_rows=table.dropped_rows,
            )
        except TermwiseUserError as error:
            raise TermwiseUserError(error.reason, path=data, field=error.field) from None
        print_report(report, console)
        reports = [report]
    if json_out is not None:
        write_json(reports, json_out)
        console.print(f"report written to {json_out}")


def _probe_ohlcv(
    frame: pd.DataFrame,
    data: Path,
    target: str | None,
    settings: ProbeSettings,
    console: Console,
    verbose: bool,
    null_draws: int = 3,
) -> list[ProbeReport]:
    from termwise.data import ohlcv
    from termwise.probes.report import print_report
    from termwise.probes.run import probe_bars

    bars = ohlcv.build(frame, str(data))
    names = ohlcv.target_names()
    if target is not None and target not in names:
        from termwise.errors import suggest

        raise TermwiseUserError(
            f"unknown OHLCV target {target!r}{suggest(target, names)}; targets: {', '.join(names)}",
            path=data,
            field="--target",
        )
    reports = []
    skipped: list[str] = []
    for name in [target] if target else names:
        try:
            report, dropped = probe_bars(bars, name, settings)
        except TermwiseUserError as error:
            if target:  # the one target asked for
                raise TermwiseUserError(error.reason, path=data) from None
            skipped.append(error.reason)  # one degenerate target; the others still rank
            console.print(f"{name}: skipped: {error.reason}", markup=False)
            continue
        report.notes.append(
            f"{dropped} bars without enough history or future dropped; "
            f"series split by {bars.grouping}; training rows whose target "
            "reaches into the test period purged"
        )
        if verbose or target:
            print_report(report, console)
        else:
            console.print(f"{name}: {report.verdict.label} ({report.seconds:.1f} s)")
        reports.append(report)
    if not reports:
        raise TermwiseUserError(
            f"no OHLCV target could be probed ({len(skipped)} skipped; first: {skipped[0]})",
            path=data,
        )
    if null_draws:
        _add_construction(frame, data, reports, settings, console, null_draws)
        for report in reports if (verbose or target) else []:
            if report.construction:
                console.print(f"{report.target_name}: {report.construction['statement']}")
    return reports


def _add_construction(
    frame: pd.DataFrame,
    data: Path,
    reports: list[ProbeReport],
    settings: ProbeSettings,
    console: Console,
    draws: int,
) -> None:
    """Each report's margin over what a random walk gives, in its verdict and JSON."""
    from dataclasses import asdict

    from termwise.probes.construction import construction_baselines, judge

    console.print(f"running the same pipeline on {draws} random walks shaped like the data")
    nulls = construction_baselines(
        frame, str(data), [r.target_name for r in reports], settings, draws
    )
    for report in reports:
        values = nulls[report.target_name]
        if not values:
            report.notes.append("no random-walk baseline: the target was degenerate on every draw")
            continue
        found = judge(report, values)
        report.construction = asdict(found)
        report.verdict.evidence.append(f"construction baseline: {found.statement}")
