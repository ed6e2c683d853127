"""Rendering probe reports: rich tables for people, JSON for machines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from termwise.data.jsonl import write_bytes_atomic
from termwise.probes.models import PRIMARY
from termwise.probes.run import ProbeReport

VERDICT_STYLE = {
    "signal": "bold green",
    "weak-signal": "yellow",
    "no-signal": "bold red",
    "leakage-suspected": "bold magenta",
}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(report: ProbeReport, console: Console, top: int = 15) -> None:
    target = report.target
    console.rule(f"Probe: target {report.target_name!r} ({target.kind}, {target.rows} rows)")
    console.print(target.description)
    console.print(f"split: {report.split}; {report.train_rows} train / {report.test_rows} test")
    table = Table(title="Per-feature probes (q = BH-adjusted p)")
    for column in ("feature", "|pearson|", "q", "|spearman|", "q", "MI", "q", "one-feature", "q"):
        table.add_column(column, justify="right" if column != "feature" else "left")
    ranked = sorted(report.features, key=lambda f: min(f.q.values()))
    for result in ranked[:top]:
        cells = [result.name]
        for stat in ("pearson", "spearman", "mutual_info", "one_feature"):
            cells += [_fmt(result.values.get(stat)), _q(result.q.get(stat))]
        table.add_row(*cells)
    console.print(table)
    if len(ranked) > top:
        console.print(f"({len(ranked) - top} more features in the JSON report)")
    metric = PRIMARY[target.kind]
    models = Table(title="Model probes vs shuffled-label controls (95 % bootstrap intervals)")
    for column in ("model", "metric", "train", "test", "control test"):
        models.add_column(column)
    for probe in report.models:
        for name in probe.test:
            style = "bold" if name == metric else ""
            models.add_row(
                probe.model,
                name,
                _interval(probe.train[name]),
                _interval(probe.test[name]),
                _interval(probe.control_test[name]),
                style=style,
            )
    console.print(models)
    verdict = report.verdict
    console.print(f"Verdict: [{VERDICT_STYLE[verdict.label]}]{verdict.label}[/]")
    for line in verdict.evidence:
        console.print(f"  - {line}", markup=False)
    for line in verdict.suggestions:
        console.print(f"  -> {line}", markup=False, style="green")
    for note in report.notes:
        console.print(f"  note: {note}", markup=False, style="dim")


def _q(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def _interval(interval: object) -> str:
    value, low, high = (getattr(interval, k) for k in ("value", "low", "high"))
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def print_ranking(reports: Sequence[ProbeReport], console: Console) -> None:
    built = any(r.construction for r in reports)
    title = (
        "Targets ranked by the margin over what a random walk gives"
        if built
        else "Targets ranked by held-out signal over the shuffled control"
    )
    table = Table(title=title)
    columns = ["rank", "target", "kind", "verdict", "best model", "test", "control"]
    if built:
        columns += ["random walk gives", "margin", "beyond a random walk"]
    for column in columns:
        table.add_column(column)
    for rank, report in enumerate(rank_reports(reports), start=1):
        metric = PRIMARY[report.target.kind]
        best = max(report.models, key=lambda m: m.test[metric].value - m.control_test[metric].value)
        row = [
            str(rank),
            report.target_name,
            report.target.kind,
            report.verdict.label,
            f"{best.model} {metric}",
            _interval(best.test[metric]),
            _interval(best.control_test[metric]),
        ]
        if built:
            c = report.construction
            row += (
                [f"{c['baseline']:.3f}", f"{c['margin']:+.3f}", "yes" if c["beyond"] else "no"]
                if c
                else ["-", "-", "-"]
            )
        table.add_row(*row)
    console.print(table)


def lift(report: ProbeReport) -> float:
    """Best model's test metric over its control's, scaled so AUC and R^2 compare
    (AUC lift over 0.5 doubled, roughly a Gini; R^2 as is)."""
    metric = PRIMARY[report.target.kind]
    gains = [m.test[metric].low - m.control_test[metric].high for m in report.models]
    return max(gains) * (2.0 if metric == "auc" else 1.0)


ORDER = {"signal": 0, "leakage-suspected": 1, "weak-signal": 2, "no-signal": 3}


def rank_reports(reports: Sequence[ProbeReport]) -> list[ProbeReport]:
    """With construction baselines: beyond-a-random-walk targets first, by their margin over
    it; else by verdict, then lift over the shuffled control."""
    if any(r.construction for r in reports):

        def margin(r: ProbeReport) -> tuple[int, float]:
            c = r.construction
            value = c["margin"] if c and math.isfinite(c["margin"]) else -math.inf
            return (0 if c and c["beyond"] else 1, -value)

        return sorted(reports, key=margin)
    return sorted(reports, key=lambda r: (ORDER[r.verdict.label], -lift(r)))


def write_json(reports: Sequence[ProbeReport], path: Path) -> None:
    payload = [r.to_dict() for r in rank_reports(reports)]
    write_bytes_atomic(
        path,
        orjson.dumps(
            payload if len(payload) != 1 else payload[0],
            option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY,
        ),
        owner="probe",
    )
