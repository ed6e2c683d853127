"""Bayesian sequence classifier: train it, or diagnose why it will not learn.

Setup: read a table (or OHLCV bars), build windows of consecutive rows per series, split
chronologically. Train: ``cross_entropy + kl_weight * KL(posterior || prior)`` through the
shared trainer, with the health monitor watching both terms. Diagnose: three runs answer
"is it the data, the KL, or the model?":

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
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

from termwise.config import ExistingFile, StrictModel
from termwise.data.windows import WindowDataset, window_ends
from termwise.health import HealthMonitor
from termwise.models.sequence import BayesSequenceClassifier
from termwise.objective import Objective
from termwise.probes.splits import chronological_split
from termwise.terms import bayes_layer_kl
from termwise.trainer import StepOutput, Trainer, TrainerConfig, seed_everything

# -- config --------------------------------------------------------------------------------


class BayesDataConfig(StrictModel):
    """Where the sequences come from."""

    path: ExistingFile = Field(..., description="CSV, Parquet or JSONL table (or OHLCV bars).")
    target: str = Field(
        ..., description="Target column, or with ohlcv a built target such as direction_5."
    )
    ohlcv: bool = Field(False, description="Build per-bar features and targets from OHLCV.")
    features: list[str] | None = Field(
        None, description="Per-step feature columns (default: every numeric column)."
    )
    time_col: str | None = Field(None, description="Orders rows; the split is chronological.")
    group_col: str | None = Field(None, description="Series id: windows never span two.")
    window: int = Field(32, ge=2, description="Steps per sequence.")
    test_fraction: float = Field(0.25, gt=0, lt=1, description="Latest share held out.")


class BayesModelConfig(StrictModel):
    """Shape of the classifier and its weight prior."""

    d_model: int = Field(64, gt=0, description="Width of the transformer.")
    layers: int = Field(2, gt=0, description="Transformer encoder layers.")
    heads: int = Field(4, gt=0, description="Attention heads (must divide d_model).")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout in encoder and head.")
    prior_sigma: float = Field(1.0, gt=0, description="Std of the N(0, s^2) weight prior.")
    posterior_std_init: float = Field(0.01, gt=0, description="Initial posterior std.")


class BayesClfConfig(StrictModel):
    """``termwise bayes-clf`` settings."""

    data: BayesDataConfig = Field(..., description="The sequences.")
    model: BayesModelConfig = Field(default_factory=BayesModelConfig, description="Model.")
    kl_weight: float | Literal["1/N"] = Field(
        "1/N",
        description="Weight of the KL term: a number, or 1/N (N = training windows, "
        "the ELBO's scaling).",
    )
    learning_rate: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Cross-entropy smoothing.")
    trainer: TrainerConfig = Field(
        default_factory=lambda: TrainerConfig(
            max_steps=400, batch_size=64, health_every=25, checkpoint_every=0
        ),
        description="Shared training-loop settings.",
    )


# -- data ----------------------------------------------------------------------------------


@dataclass
class Sequences:
    train: WindowDataset
    test: WindowDataset
    classes: list[str]
    n_features: int


def load_sequences(config: BayesDataConfig, seed: int) -> Sequences:
    """Rows -> per-series windows -> chronological split (purged when targets look ahead)."""
    from termwise.probes import ohlcv
    from termwise.probes.table import read_table, select

    frame = read_table(config.path)
    label_end = None
    if config.ohlcv:
        rows = ohlcv.target_arrays(ohlcv.build(frame, str(config.path)), config.target)
        x, y, times, groups, label_end = rows.x, rows.y, rows.times, rows.groups, rows.known_at
    else:
        table = select(
            frame, config.path, config.target, config.features, config.time_col, config.group_col
        )
        x, y = table.x, table.y
        times = table.times if table.times is not None else np.arange(len(y), dtype=float)
        groups = table.groups if table.groups is not None else np.zeros(len(y), dtype=str)
    order = np.lexsort((times, groups))
    x, y, times, groups = x[order], y[order], times[order], groups[order]
    label_end = None if label_end is None else label_end[order]
    classes, codes = np.unique(y, return_inverse=True)
    ends = window_ends(groups, config.window)
    train_pos, test_pos = chronological_split(
        times[ends], config.test_fraction, None if label_end is None else label_end[ends]
    )
    train_ends, test_ends = ends[train_pos], ends[test_pos]
    # Standardise with training statistics only (no peeking at the test period).
    mean, std = x[train_ends].mean(axis=0), x[train_ends].std(axis=0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    return Sequences(
        WindowDataset(x, codes, train_ends, config.window),
        WindowDataset(x, codes, test_ends, config.window),
        [str(c) for c in classes],
        x.shape[1],
    )


# -- one training run ----------------------------------------------------------------------


@dataclass
class RunResult:
    name: str
    metrics: dict[str, float]
    kl_share: float
    findings: list[str] = field(default_factory=list)


def kl_weight_value(config: BayesClfConfig, train_windows: int) -> float:
    return 1.0 / train_windows if config.kl_weight == "1/N" else float(config.kl_weight)


def train_run(
    config: BayesClfConfig,
    data: Sequences,
    run_dir: Path,
    console: Console,
    name: str,
    use_kl: bool = True,
    resume: bool = False,
) -> RunResult:
    m, cfg = config.model, config.trainer
    seed_everything(cfg.seed)
    model = BayesSequenceClassifier(
        data.n_features,
        len(data.classes),
        config.data.window,
        m.d_model,
        m.layers,
        m.heads,
        m.dropout,
        m.prior_sigma,
        m.posterior_std_init,
    )
    weight = kl_weight_value(config, len(data.train)) if use_kl else 0.0
    objective = Objective({"ce": "data", "kl": "kl"}, weights={"kl": weight})

    def loss_fn(model: nn.Module, batch: tuple[Tensor, Tensor], step: int) -> StepOutput:
        x, y = batch
        ce = F.cross_entropy(model(x), y, reduction="none", label_smoothing=config.label_smoothing)
        return StepOutput(*objective(step, ce=ce, kl=bayes_layer_kl(model)))

    monitor = HealthMonitor(every=cfg.health_every, run_dir=run_dir, console=console)
    trainer = Trainer(
        model=model,
        optimizer=torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        ),
        train_data=data.train,
        loss_fn=loss_fn,
        config=cfg,
        run_dir=run_dir,
        monitor=monitor,
        console=console,
        eval_fn=lambda model: evaluate(model, data),
    )
    result = trainer.fit(resume=resume)
    return RunResult(
        name,
        result.metrics,
        result.scalars.get("kl.share", 0.0),
        sorted({f.code for f in result.findings if f.severity != "info"}),
    )


def evaluate(model: nn.Module, data: Sequences) -> dict[str, float]:
    """Loss, accuracy and macro-F1 on train and test (posterior mean weights), with the
    majority-class baseline of the test split."""
    from sklearn.metrics import f1_score

    metrics: dict[str, float] = {}
    for split, dataset in (("train", data.train), ("test", data.test)):
        x, y = dataset.tensors()
        logits = torch.cat([model(chunk) for chunk in x.split(1024)])
        predicted = logits.argmax(-1)
        metrics[f"{split}_loss"] = F.cross_entropy(logits, y).item()
        metrics[f"{split}_accuracy"] = (predicted == y).float().mean().item()
        metrics[f"{split}_f1"] = float(f1_score(y, predicted, average="macro", zero_division=0))
    train_y, test_y = data.train.tensors()[1], data.test.tensors()[1]
    majority = int(torch.bincount(train_y).argmax())
    metrics["baseline_accuracy"] = (test_y == majority).float().mean().item()
    shares = torch.bincount(train_y, minlength=len(data.classes)).float() / len(train_y)
    metrics["baseline_loss"] = float(-(shares * shares.clamp_min(1e-12).log()).sum())
    return metrics


# -- diagnose ------------------------------------------------------------------------------


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


def diagnose(
    config: BayesClfConfig, run_dir: Path, console: Console
) -> tuple[str, list[RunResult]]:
    data = load_sequences(config.data, config.trainer.seed)
    console.print(
        f"{len(data.train)} training and {len(data.test)} test windows of "
        f"{config.data.window} steps, {data.n_features} features, classes "
        f"{', '.join(data.classes)}"
    )
    tiny = config.model_copy(
        update={"model": config.model.model_copy(update={"d_model": 32, "layers": 1, "heads": 2})}
    )
    tiny_run, configured, no_kl = runs = [
        train_run(tiny, data, run_dir / "1_tiny", console, "tiny (32 wide, 1 layer), KL"),
        train_run(config, data, run_dir / "2_configured", console, "configured, KL"),
        train_run(config, data, run_dir / "3_no_kl", console, "configured, no KL", use_kl=False),
    ]
    decision = verdict(tiny_run, configured, no_kl, test_rows=len(data.test))
    print_diagnosis(runs, decision, console)
    return decision, runs


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
