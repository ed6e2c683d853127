"""Free-bits demo: a variational bottleneck classifier on scikit-learn's digits.

Run 1 starts, on purpose, with free bits above the per-dimension KL the model will have
(0.1 against a KL of about 0.05, like the source run). Every token is under the threshold,
so ``kl_after`` is 0 and the KL term has no gradient: the health monitor reports
``free_bits.all_free`` with a suggested value (0.3 x observed KL). Run 2 trains again at the
suggested value, taken from the finding, and should land in the healthy band (20-40 %
of the KL penalty freed).

Model: ``x -> MLP -> (mu, logvar) -> z = mu + eps * sigma -> linear -> 10 classes``, with
cross-entropy plus ``kl_weight(step) * free_bits_kl(mu, logvar, free_bits)``, the weight
warmed up linearly. The channel is capacity-limited: ``mu = mean_bound * tanh(.)`` and
``logvar = -logvar_range * sigmoid(.)``, which caps the KL one dimension can carry at
``0.5 * (mean_bound^2 + exp(-logvar_range) - 1 + logvar_range)`` (0.08 nats by default).
Without such a cap the cross-entropy pushes an unpenalised KL up to the threshold itself
(free bits become a KL target); with it the model's KL sits near 0.05-0.08 whatever the
threshold, as in the source run, and free bits of 0.1 free all of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from termwise.data.jsonl import atomic_directory, write_json
from termwise.health.findings import Finding
from termwise.objective import Objective
from termwise.recipes.free_bits_demo.config import FreeBitsDemoConfig
from termwise.recipes.free_bits_demo.model import BottleneckClassifier
from termwise.schedules import linear_warmup
from termwise.terms import free_bits_kl
from termwise.trainer import StepOutput, Trainer, TrainResult, seed_everything


@dataclass
class DemoData:
    train: TensorDataset
    test: TensorDataset


def load_data(test_fraction: float, seed: int) -> DemoData:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return DemoData(TensorDataset(x[train], y[train]), TensorDataset(x[test], y[test]))


def train_once(
    config: FreeBitsDemoConfig, free_bits: float, run_dir: Path, console: Console
) -> DemoRun:
    """One training run at ``free_bits``: the model and the trainer's result (findings)."""
    cfg = config.trainer
    data = load_data(config.test_fraction, cfg.seed)
    seed_everything(cfg.seed)
    model = BottleneckClassifier(
        64, config.hidden_dim, config.latent_dim, 10, config.mean_bound, config.logvar_range
    )
    objective = Objective(
        {"ce": "data", "kl": "kl"},
        weights={"kl": linear_warmup(0.0, config.max_kl_weight, config.kl_warmup_steps)},
    )

    def loss_fn(model: nn.Module, batch: tuple[Tensor, Tensor], step: int) -> StepOutput:
        x, y = batch
        logits, mu, logvar = model(x)
        ce = F.cross_entropy(logits, y, reduction="none", label_smoothing=config.label_smoothing)
        total, breakdown = objective(step, ce=ce, kl=free_bits_kl(mu, logvar, free_bits))
        return StepOutput(total, breakdown)

    def evaluate(model: nn.Module, step: int) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for split, dataset in (("train", data.train), ("test", data.test)):
            x, y = dataset.tensors
            logits, _, _ = model(x.to(next(model.parameters()).device))  # CPU or the GPU
            logits = logits.cpu()
            # The loss as trained (smoothed): the fit rules compare like with like.
            loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
            metrics[f"{split}_loss"] = loss.item()
            metrics[f"{split}_accuracy"] = (logits.argmax(-1) == y).float().mean().item()
        return metrics

    trainer = Trainer(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=config.learning_rate),
        train_data=data.train,
        loss_fn=loss_fn,
        config=cfg,
        run_dir=run_dir,
        config_keys={"kl.free_bits": "free_bits", "kl.weight": "max_kl_weight"},
        eval_fn=evaluate,
        console=console,
    )
    return DemoRun(free_bits, model, trainer.fit())


@dataclass
class DemoRun:
    free_bits: float
    model: BottleneckClassifier
    result: TrainResult


# -- the recipe contract: run 1, then run 2 at the value run 1's finding suggests -----------

NAME = "free_bits_demo"
KEEPS_BEST = False
OUTPUTS: tuple[str, ...] = (r"run\d+",)  # run1 and run2
FREE_BITS_CODES = ("free_bits.all_free", "free_bits.band")


@dataclass
class Session:
    config: FreeBitsDemoConfig
    output: Path
    console: Console
    runs: list[DemoRun] = field(default_factory=list)
    suggestion: Finding | None = None  # run 1's last free-bits warning


def setup(
    config: FreeBitsDemoConfig, output: Path, console: Console, resume: bool = False
) -> Session:
    return Session(config, output, console)


def train(session: Session, resume: bool = False) -> None:
    """Run 1 at ``config.free_bits``; run 2 at the value run 1's free-bits warning suggests
    (none when run 1 raised none)."""
    config, console = session.config, session.console
    console.rule(f"Run 1: free_bits = {config.free_bits:g}")
    first = train_once(config, config.free_bits, session.output / "run1", console)
    session.runs = [first]
    session.suggestion = next(
        (
            f
            for f in reversed(first.result.findings)
            if f.code in FREE_BITS_CODES and f.severity != "info"
        ),
        None,
    )
    if session.suggestion is None:
        return
    suggested = float(session.suggestion.evidence["suggested_free_bits"])
    console.rule(f"Run 2: free_bits = {suggested:g} (suggested by {session.suggestion.code})")
    session.runs.append(train_once(config, suggested, session.output / "run2", console))


def save(session: Session, directory: Path) -> None:
    """The last run's model (weights and the free bits it trained with)."""
    from safetensors.torch import save_model

    last = session.runs[-1]
    with atomic_directory(directory) as partial:
        save_model(last.model, str(partial / "model.safetensors"))
        manifest = {"format": "termwise-free-bits-demo/1", "free_bits": last.free_bits}
        write_json(partial / "termwise_demo.json", manifest)


def evaluate(session: Session, directory: Path) -> dict[str, Any]:
    """Each run's KL diagnostics and test accuracy, the finding of run 1 and the verdict of
    the free-bits band on run 2."""
    runs = [_run_row(run) for run in session.runs]
    outcome: dict[str, Any] = {
        "run1_finding": session.suggestion.code if session.suggestion else None,
        "runs": runs,
    }
    if len(session.runs) > 1:
        band = next(
            (f for f in reversed(session.runs[1].result.findings) if f.code == "free_bits.band"),
            None,
        )
        outcome["suggested_free_bits"] = session.runs[1].free_bits
        outcome["run2_verdict"] = "no band finding" if band is None else band.evidence["verdict"]
    return outcome


def _run_row(run: DemoRun) -> dict[str, float]:
    s = run.result.scalars
    return {
        "free_bits": run.free_bits,
        **{k: s.get(f"kl.{k}", float("nan")) for k in ("kl_raw", "kl_after")},
        **{k: s.get(f"kl.{k}", float("nan")) for k in ("penalty_reduction", "free_fraction")},
        "kl_share": s.get("kl.share", float("nan")),
        "test_accuracy": run.result.metrics.get("test_accuracy", float("nan")),
    }


def show(results: dict[str, Any], console: Console) -> None:
    table = Table(title="Free-bits demo")
    columns = ("run", "free_bits", "kl_raw", "kl_after", "penalty reduction", "free fraction")
    for column in (*columns, "KL share", "test acc", "verdict"):
        table.add_column(column)
    verdicts = [results["run1_finding"] or "no free-bits warning", results.get("run2_verdict")]
    for number, (row, verdict) in enumerate(zip(results["runs"], verdicts, strict=False), 1):
        table.add_row(
            str(number),
            f"{row['free_bits']:g}",
            f"{row['kl_raw']:.4f}",
            f"{row['kl_after']:.4f}",
            f"{100 * row['penalty_reduction']:.0f} %",
            f"{100 * row['free_fraction']:.0f} %",
            f"{100 * row['kl_share']:.1f} %",
            f"{100 * row['test_accuracy']:.1f} %",
            str(verdict),
        )
    console.print(table)
    if results["run1_finding"] is None:
        console.print("Run 1 raised no free-bits warning, so there is nothing to correct.")


def key_metric(results: dict[str, Any]) -> dict[str, Any] | None:
    """None: the runs' own reports hold their metrics."""
    return None
