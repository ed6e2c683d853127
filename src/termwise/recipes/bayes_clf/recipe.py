"""Bayesian sequence classifier: train it, or diagnose why it will not learn.

Setup: read a table (or OHLCV bars), build windows of consecutive rows per series, split
chronologically. Train: ``cross_entropy + kl_weight * KL(posterior || prior)`` through the
shared trainer, with the health monitor watching both terms. Diagnose: three runs answer
"is it the data, the KL, or the model?":

1. a tiny model (32 wide, 1 layer) with the configured KL;
2. the configured model with the configured KL;
3. the configured model without KL.

The verdict's rules: :mod:`termwise.recipes.bayes_clf.verdict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor, nn

from termwise.data.jsonl import atomic_directory, write_json
from termwise.objective import Objective
from termwise.recipes.bayes_clf.config import BayesClfConfig
from termwise.recipes.bayes_clf.data import Sequences, load_sequences
from termwise.recipes.bayes_clf.model import BayesSequenceClassifier
from termwise.recipes.bayes_clf.verdict import RunResult, print_diagnosis, run_result, verdict
from termwise.terms import bayes_layer_kl
from termwise.trainer import StepOutput, Trainer, TrainResult, seed_everything

# -- one training run ----------------------------------------------------------------------


def kl_weight_value(config: BayesClfConfig, train_windows: int) -> float:
    return 1.0 / train_windows if config.kl_weight == "1/N" else float(config.kl_weight)


def build_trainer(
    config: BayesClfConfig, data: Sequences, run_dir: Path, console: Console, use_kl: bool = True
) -> Trainer:
    """The model, its objective (cross-entropy + weighted KL) and the trainer."""
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

    return Trainer(
        model=model,
        optimizer=torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        ),
        train_data=data.train,
        loss_fn=loss_fn,
        config=cfg,
        run_dir=run_dir,
        config_keys={"kl.weight": "kl_weight"},
        console=console,
        eval_fn=lambda model, step: evaluate_model(model, data),
    )


# -- the recipe contract: the configured model, trained and saved ----------------------------

NAME = "bayes_clf"
KEEPS_BEST = False
OUTPUTS: tuple[str, ...] = ()


@dataclass
class Session:
    config: BayesClfConfig
    data: Sequences
    trainer: Trainer
    fitted: TrainResult | None = None


def setup(config: BayesClfConfig, output: Path, console: Console, resume: bool = False) -> Session:
    data = load_sequences(config.data, config.trainer.seed)
    describe(config, data, console)
    return Session(config, data, build_trainer(config, data, output, console))


def train(session: Session, resume: bool = False) -> None:
    """Train, evaluating on the test period at the end."""
    session.fitted = session.trainer.fit(resume=resume)


def save(session: Session, directory: Path) -> None:
    """Weights (safetensors) and what rebuilds the model (``termwise_bayes_clf.json``)."""
    from safetensors.torch import save_model

    data, config = session.data, session.config
    with atomic_directory(directory) as partial:
        save_model(session.trainer.model, str(partial / "model.safetensors"))
        manifest = {
            "format": "termwise-bayes-clf/1",
            "model": config.model.model_dump(mode="json"),
            "window": config.data.window,
            "n_features": data.n_features,
            "classes": list(data.classes),
        }
        write_json(partial / "termwise_bayes_clf.json", manifest)


def evaluate(session: Session, directory: Path) -> dict[str, Any]:
    """The fitted run's train and test metrics, its KL share and its warnings."""
    fitted = session.fitted
    if fitted is None:
        raise RuntimeError("bayes_clf.evaluate needs train() first")
    return asdict(run_result(fitted, "configured"))


def show(results: dict[str, Any], console: Console) -> None:
    fields = {k: results[k] for k in ("name", "metrics", "kl_share", "findings")}
    print_diagnosis([RunResult(**fields)], "see the findings above", console)


def describe(config: BayesClfConfig, data: Sequences, console: Console) -> None:
    console.print(
        f"{len(data.train)} training and {len(data.test)} test windows of "
        f"{config.data.window} steps, {data.n_features} features, classes "
        f"{', '.join(data.classes)}"
    )


def diagnostic_run(
    config: BayesClfConfig,
    data: Sequences,
    run_dir: Path,
    console: Console,
    name: str,
    use_kl: bool = True,
) -> RunResult:
    """One of diagnose's runs, its results in ``RUN_DIR/eval.json``."""
    run = run_result(build_trainer(config, data, run_dir, console, use_kl).fit(), name)
    write_json(run_dir / "eval.json", {"recipe": NAME, **asdict(run)})
    return run


def evaluate_model(model: nn.Module, data: Sequences) -> dict[str, float]:
    """Loss, accuracy and macro-F1 on train and test (posterior mean weights), with the
    majority-class baseline of the test split."""
    from sklearn.metrics import f1_score

    metrics: dict[str, float] = {}
    device = next(model.parameters()).device  # the trainer may have put it on a GPU
    for split, dataset in (("train", data.train), ("test", data.test)):
        x, y = dataset.tensors()
        logits = torch.cat([model(chunk.to(device)).cpu() for chunk in x.split(1024)])
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


def diagnose(
    config: BayesClfConfig, run_dir: Path, console: Console
) -> tuple[str, list[RunResult]]:
    data = load_sequences(config.data, config.trainer.seed)
    describe(config, data, console)
    tiny = config.model_copy(
        update={"model": config.model.model_copy(update={"d_model": 32, "layers": 1, "heads": 2})}
    )
    tiny_run, configured, no_kl = runs = [
        diagnostic_run(tiny, data, run_dir / "1_tiny", console, "tiny (32 wide, 1 layer), KL"),
        diagnostic_run(config, data, run_dir / "2_configured", console, "configured, KL"),
        diagnostic_run(
            config, data, run_dir / "3_no_kl", console, "configured, no KL", use_kl=False
        ),
    ]
    decision = verdict(tiny_run, configured, no_kl, test_rows=len(data.test))
    print_diagnosis(runs, decision, console)
    return decision, runs


def key_metric(results: dict[str, Any]) -> dict[str, Any] | None:
    """None: the trainer's held-out metrics (``test_loss``) stand for the run."""
    return None
