"""bayes-clf diagnose's verdict: "is it the data, the KL, or the model?", from three runs:

1. a tiny model (32 wide, 1 layer) with the configured KL;
2. the configured model with the configured KL;
3. the configured model without KL.

Verdict rules (in this order):

* run 2 beats the majority baseline on test: no problem found;
* KL terms hold most of run 2's objective and run 3 fits (beats the baseline, or reaches a
  clearly lower training loss): "KL is blocking learning";
* no run beats the baseline: "data has no usable signal";
* otherwise: "model or optimisation issue".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from termwise.trainer import TrainResult

DIAGNOSE_OUTPUTS = (r"1_tiny|2_configured|3_no_kl",)  # the three runs' folders


@dataclass
class RunResult:
    name: str
    metrics: dict[str, float]
    kl_share: float
    findings: list[str] = field(default_factory=list)


def run_result(fitted: TrainResult, name: str) -> RunResult:
    warnings = sorted({f.code for f in fitted.findings if f.severity != "info"})
    return RunResult(name, fitted.metrics, fitted.scalars.get("kl.share", 0.0), warnings)


def beats_baseline(metrics: dict[str, float], test_rows: int) -> bool:
    """Test accuracy above the majority baseline by 2 standard errors (and 1 point)."""
    base = metrics["baseline_accuracy"]
    margin = max(0.01, 2 * math.sqrt(base * (1 - base) / max(test_rows, 1)))
    return metrics["test_accuracy"] > base + margin


def fits(metrics: dict[str, float]) -> bool:
    """Training loss clearly below the label's entropy: the model learned something."""
    return metrics["train_loss"] < 0.9 * metrics["baseline_loss"]


def verdict(tiny: RunResult, configured: RunResult, no_kl: RunResult, test_rows: int) -> str:
    if beats_baseline(configured.metrics, test_rows):
        return "no problem found: the configured model beats the majority baseline"
    no_kl_learns = beats_baseline(no_kl.metrics, test_rows) or (
        fits(no_kl.metrics) and not fits(configured.metrics)
    )
    if configured.kl_share > 0.5 and no_kl_learns:
        return "KL is blocking learning"
    if not any(beats_baseline(r.metrics, test_rows) for r in (tiny, configured, no_kl)):
        return "data has no usable signal"
    return "model or optimisation issue"


def print_diagnosis(runs: list[RunResult], decision: str, console: Console) -> None:
    table = Table(title="bayes-clf diagnose")
    for column in (
        "run",
        "train loss",
        "test loss",
        "train acc",
        "test acc",
        "test F1",
        "baseline acc",
        "KL share",
        "findings",
    ):
        table.add_column(column)
    for run in runs:
        m = run.metrics
        table.add_row(
            run.name,
            f"{m['train_loss']:.4f}",
            f"{m['test_loss']:.4f}",
            f"{m['train_accuracy']:.3f}",
            f"{m['test_accuracy']:.3f}",
            f"{m['test_f1']:.3f}",
            f"{m['baseline_accuracy']:.3f}",
            f"{100 * run.kl_share:.1f} %",
            ", ".join(run.findings) or "-",
        )
    console.print(table)
    console.print(f"Verdict: [bold]{decision}[/]")
