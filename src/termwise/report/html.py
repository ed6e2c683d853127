"""``termwise report``: one self-contained HTML file (figures embedded as PNG) from what a
run directory already holds; a section with nothing to show is left out with a note."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Sequence
from typing import Any

from termwise.health.findings import group_findings
from termwise.report import plots
from termwise.report.run_files import RunFiles

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 1100px;
color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } .warning { color: #b35900; } .error { color: #c00; }
.note { color: #777; font-size: 0.9em; } pre { background: #f7f7f7; padding: 0.8em;
overflow-x: auto; font-size: 0.8em; } img { max-width: 100%; }
"""


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Report:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def section(self, title: str, body: str | None, missing: str) -> None:
        self.parts.append(f"<h2>{html.escape(title)}</h2>")
        self.parts.append(body if body else f'<p class="note">{html.escape(missing)}</p>')

    def figure(self, title: str, png: bytes | None, missing: str) -> None:
        self.section(title, _image(png, title) if png else None, missing)


def markers(run: RunFiles) -> list[plots.Marker]:
    """First steps of the warnings, labelled [1], [2] ... as in the findings table."""
    groups = [g for g in group_findings(run.findings) if g.worst != "info"]
    return [(g.first_step, f"[{i}]") for i, g in enumerate(groups, 1)]


def warning_count(run: RunFiles) -> int:
    return sum(f.severity != "info" for f in run.findings)


def info_note(run: RunFiles) -> str:
    """Info notes ask for no change: counted apart from the warnings."""
    notes = len(run.findings) - warning_count(run)
    return f", {notes} info note(s)" if notes else ""


def findings_table(run: RunFiles) -> str | None:
    groups = group_findings(run.findings)
    if not groups:
        return None
    warned = [g for g in groups if g.worst != "info"]
    rows = []
    for group in groups:
        index = f"[{warned.index(group) + 1}]" if group in warned else ""
        latest = group.latest
        changes = "; ".join(
            f"{c['config_key']}: {c.get('from')} -> {c['to']}" for c in latest.changes
        )
        rows.append(
            (
                index,
                group.worst,
                latest.code,
                latest.subject,
                group.first_step,
                group.count,
                latest.message,
                latest.suggestion,
                changes or "-",
            )
        )
    header = (
        "#",
        "severity",
        "code",
        "subject",
        "first step",
        "times",
        "latest",
        "suggests",
        "change",
    )
    return _table(header, rows)


def _results(run: RunFiles, report: Report) -> None:
    """The run's evaluation, drawn the way the recipe that wrote it is read."""
    evaluation = run.evaluation
    if evaluation is None:
        report.section("Evaluation", None, "no eval.json (not evaluated yet)")
        return
    if run.recipe == "btrm":
        report.figure("Per-head AUC (btrm)", plots.head_aucs(evaluation), "no AUCs")
    elif run.recipe == "pref":
        report.figure("Calibration and categories (pref)", plots.reliability(evaluation), "-")
        bins = evaluation.get("reliability") or []
        if bins:
            rows = [
                (b["bin"], b["pairs"], _number(b["confidence"]), _number(b["accuracy"]))
                for b in bins
            ]
            report.parts.append(_table(("confidence bin", "pairs", "confidence", "accuracy"), rows))
    elif run.recipe == "lvm":
        passed = evaluation.get("passed", {})
        verdicts = [(k, "pass" if v else "FAIL") for k, v in passed.items()]
        table = _table(("gate", "result"), verdicts) if verdicts else None
        report.section("Gates (lvm)", table, "-")
        png = plots.offset_sweep(evaluation)
        if png:
            report.parts.append(_image(png, "offset sweep"))
    else:
        metrics = evaluation.get("metrics", evaluation)  # bayes_clf keeps them one level down
        flat = [(k, _number(v)) for k, v in metrics.items() if not isinstance(v, dict | list)]
        report.section("Evaluation", _table(("metric", "value"), flat) if flat else None, "-")


def build_report(run: RunFiles) -> str:
    marks = markers(run)
    report = Report()
    last = run.last_step
    status = (
        f"finished at step {run.report.get('step')}"
        if run.report
        else f"in progress or stopped (last logged step {last})"
    )
    figures: list[tuple[str, Callable[[], bytes | None], str]] = [
        (
            "Each term's share of the total",
            lambda: plots.shares(run, marks),
            "no term shares logged",
        ),
        ("Raw term values", lambda: plots.raw_terms(run, marks), "no raw term values logged"),
        ("Learning rate and gradient norm", lambda: plots.optimisation(run), "not logged"),
        (
            "Free bits: KL raw and after, penalty reduction",
            lambda: plots.free_bits(run, marks),
            "no free-bits KL term in this run",
        ),
        (
            "Auto-scaled weights",
            lambda: plots.autoscale(run, marks),
            "no AutoScale weight in this run",
        ),
        (
            "Evaluations during training",
            lambda: plots.evaluation_curves(run),
            "no evaluations logged",
        ),
    ]
    for title, draw, missing in figures:
        report.figure(title, draw(), missing)
    try:
        _results(run, report)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        # eval.json is the recipe's; one edited by hand or from another version may not fit.
        run.notes.append(f"eval.json: a field of an unexpected shape ({error!r}); left out")
    report.section("Findings", findings_table(run), "no findings (no health.jsonl, or a clean run)")
    if run.report and isinstance(run.report.get("metrics"), dict):
        rows = [(k, _number(v)) for k, v in run.report["metrics"].items()]
        report.section("Final metrics", _table(("metric", "value"), rows), "-")
    config = f"<pre>{html.escape(run.config)}</pre>" if run.config is not None else None
    report.section(f"Config ({run.config_path})", config, "no config.yaml")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in run.notes)
    title = html.escape(str(run.run_dir))
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>termwise report: {title}'
        f"</title><style>{STYLE}</style></head><body><h1>termwise run {title}</h1>"
        f"<p>{html.escape(status)}; {warning_count(run)} warning(s)"
        f"{info_note(run)}</p>"
        + (f'<ul class="note">{notes}</ul>' if notes else "")
        + "".join(report.parts)
        + "</body></html>\n"
    )
