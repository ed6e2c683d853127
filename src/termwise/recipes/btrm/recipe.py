"""Multi-head Bradley-Terry reward model, as :class:`termwise.trainer.recipe.Recipe`: setup,
train, save, evaluate, show.

Setup reads every source once (``btrm_data``), wraps each text in the meta-prompt and
tokenises it, and plans length-bucketed batches that keep most heads active. Training runs
the shared loop: per head a Bradley-Terry term over all (positive, negative) pairs,
tier-weighted, and a log-square term holding positive scores near 1; a head without a
positive or a negative in the batch contributes nothing that step. The optimised loss is the
mean over active heads. After the last step, a tf-idf logistic regression per head is
fitted on every training row and added to the scores (``lexical.logistic_weight``,
:mod:`termwise.recipes.btrm.logistic_fit`), and each head's score level is set
(:mod:`termwise.recipes.btrm.level`). Evaluation, on each source's held-out rows:
per head, the AUC of its positives against each negative tier and each soft-negative
source, and the median positive score.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from torch import Tensor, nn

from termwise.data.jsonl import write_json
from termwise.models.backbone import adapted_backbone
from termwise.objective import Objective
from termwise.recipes.btrm.after_training import FitAfterTraining
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import (
    MembershipTable,
    kept_out_for_levelled_heads,
    level_rows,
    plan_batches,
)
from termwise.recipes.btrm.evaluate import evaluate_model, print_evaluation
from termwise.recipes.btrm.level import MIN_UNSEEN_DOCUMENTS
from termwise.recipes.btrm.lexical_fit import describe, prefit_lexical
from termwise.recipes.btrm.model import MultiHeadRewardModel, save_reward_model
from termwise.recipes.btrm.prepared import PlannedBatches, Prepared, at_scoring_length, prepare
from termwise.terms import TermOutput, multihead_bradley_terry, saturation_fraction
from termwise.terms.stats import TARGET_GAP
from termwise.trainer import StepOutput, Trainer, seed_everything
from termwise.trainer.planned import planned_batch_trainer

# -- setup ---------------------------------------------------------------------------------


def build_model(config: BtrmConfig, path: Path) -> MultiHeadRewardModel:
    backbone, hidden, pooling = adapted_backbone(path, config.backbone, config.lora)
    names = [h.name for h in config.heads]
    return MultiHeadRewardModel(backbone, hidden, names, pooling, config.logit_cap, config.lexical)


def make_objective(config: BtrmConfig) -> Objective:
    roles: dict[str, str] = {}
    weights: dict[str, float] = {}
    for head in config.heads:
        roles[f"{head.name}.bt"] = "data"
        roles[f"{head.name}.logsq"] = "regularizer"
        weights[f"{head.name}.logsq"] = config.log_square_weight
    return Objective(roles, weights=weights)


def make_loss(
    config: BtrmConfig, objective: Objective
) -> Callable[[nn.Module, dict[str, Tensor], int], StepOutput]:
    names = [h.name for h in config.heads]

    def loss_fn(model: nn.Module, batch: dict[str, Tensor], step: int) -> StepOutput:
        scores = model(
            batch["input_ids"],
            batch["attention_mask"],
            batch.get("bag_ids"),
            batch.get("bag_offsets"),
        )
        terms = multihead_bradley_terry(
            scores,
            batch["positive"],
            batch["negative_weight"],
            log_square_form=config.log_square_form,
            hard_gamma=config.hard_negative_gamma,
        )
        values: dict[str, TermOutput | None] = {}
        for h, name in enumerate(names):
            values[f"{name}.bt"] = TermOutput(
                terms.bradley_terry[h], {"pair_accuracy": terms.pair_accuracy[h]}
            )
            values[f"{name}.logsq"] = TermOutput(
                terms.log_square[h], {TARGET_GAP: terms.target_gap[h]}
            )
        # A head without pairs in the batch counts 0 (and is marked inactive), and the total
        # is the mean over the heads that had pairs: both decided on the device, no host sync.
        # With no such head it is a zero that keeps the graph (an ordinary step).
        active = terms.active.repeat_interleave(2)  # each head's .bt and .logsq, in order
        per_head = 1.0 / terms.active.sum().clamp_min(1).float()
        loss, breakdown = objective.combine(step, values, active=active, scale=per_head)
        stats = {"logits.saturation": saturation_fraction(scores, config.logit_cap)}
        return StepOutput(loss, breakdown, stats)

    return loss_fn


NAME = "btrm"
KEEPS_BEST = False
OUTPUTS: tuple[str, ...] = (r"timing\.json",)

# -- train ---------------------------------------------------------------------------------


@dataclass
class Session:
    """Everything a run needs, built before the first step."""

    config: BtrmConfig
    prepared: Prepared
    model: MultiHeadRewardModel
    trainer: Trainer
    output: Path
    train_rows: np.ndarray  # the rows the heads and the regression are fitted on
    level_rows: np.ndarray  # rows of training documents kept out, to set the score level
    after: FitAfterTraining  # the regression and the level, fitted when training ends
    # train_seconds, prefit_seconds (the lexical branch's, part of training) and
    # logistic_seconds; evaluate adds eval_seconds and writes them to OUTPUT/timing.json.
    timing: dict[str, float] = field(default_factory=dict)


def setup(config: BtrmConfig, output: Path, console: Console, resume: bool = False) -> Session:
    """Read and label every source, tokenise, plan the batches, build the model and the
    trainer: every input problem surfaces here, before the first step."""
    cfg = config.trainer
    seed_everything(cfg.seed)
    prepared = prepare(config)
    table = prepared.table
    train_rows, level = training_rows(table, config)
    console.print(
        f"{len(table.texts)} examples ({len(train_rows)} for training, {len(level)} of unseen "
        "training documents to set the score level), "
        f"{len(table.heads)} heads, backbone {prepared.backbone}"
    )
    _report_skips(table, console)
    weights = table.negative_weight(config.tier_weights.model_dump())
    plan = plan_batches(
        table,
        train_rows,
        prepared.lengths,
        cfg.batch_size,
        cfg.max_steps,
        cfg.seed,
        balance_sources=config.balance_sources,
    )
    model = build_model(config, prepared.backbone)
    prefit_started = time.perf_counter()
    if prepared.bags is not None and not resume:
        # A resumed run's branch comes from its checkpoint.
        prefit = prefit_lexical(
            model, table, prepared.bags, prepared.lengths, train_rows, weights, config
        )
        describe(prefit, console)
    prefit_seconds = time.perf_counter() - prefit_started
    after = FitAfterTraining(prepared, config, (train_rows, level), console)
    trainer = planned_batch_trainer(
        model,
        PlannedBatches(prepared, plan, weights),
        make_loss(config, make_objective(config)),
        config,
        output,
        console,
        # Every head\'s log-square weight is the one log_square_weight.
        {f"{h.name}.logsq.weight": "log_square_weight" for h in config.heads},
        {"heads.lexical.": config.lexical.learning_rate},
        callbacks=[after],
    )
    timing = {"prefit_seconds": prefit_seconds}
    return Session(config, prepared, model, trainer, output, train_rows, level, after, timing)


def training_rows(table: MembershipTable, config: BtrmConfig) -> tuple[np.ndarray, np.ndarray]:
    """The rows the heads and the regression are fitted on, and the rows of the training
    documents kept out of training to set the score level."""
    level = level_rows(table, table.split(heldout=False), config.level_fraction)
    if config.train_on_unlevelled:
        level = kept_out_for_levelled_heads(table, level, MIN_UNSEEN_DOCUMENTS)
    return np.setdiff1d(table.split(heldout=False), level), level


def train(session: Session, resume: bool = False) -> None:
    """The joint steps, then the tf-idf logistic regression added to the heads and the
    score level."""
    started = time.perf_counter()
    session.trainer.fit(resume=resume)  # FitAfterTraining runs at its end
    prefit, logistic = session.timing.get("prefit_seconds", 0.0), session.after.logistic
    session.timing |= {
        "train_seconds": time.perf_counter() - started + prefit,
        "logistic_seconds": 0.0 if logistic is None else logistic.seconds,
    }


def evaluate(session: Session, directory: Path) -> dict[str, Any]:
    """Every head on the held-out rows, at the scoring length, with the model ``directory``
    holds (the session's, as saved)."""
    started = time.perf_counter()
    config = session.config
    results = evaluate_model(session.model, at_scoring_length(session.prepared, config), config)
    session.timing["eval_seconds"] = time.perf_counter() - started
    write_json(session.output / "timing.json", session.timing)
    return results


def show(results: dict[str, Any], console: Console) -> None:
    print_evaluation(
        {k: v for k, v in results.items() if isinstance(v, dict) and "auc" in v}, console
    )


def save(session: Session, directory: Path) -> None:
    """The trained model, ready to score, in ``directory``."""
    config, prepared = session.config, session.prepared
    save_reward_model(
        session.model,
        prepared.tokenizer,
        directory,
        {
            "backbone_path": str(prepared.backbone),
            "meta_prompt": config.meta_prompt,
            "max_length": config.backbone.scoring_length,
            "train_max_length": config.backbone.max_length,
            "descriptions": {h.name: h.description for h in config.heads},
        },
    )


def _report_skips(table: MembershipTable, console: Console) -> None:
    for report in table.reports.values():
        if report.bad:
            console.print(
                f"{report.path}: skipped {len(report.bad)} bad record(s), first: {report.bad[0]}",
                markup=False,
            )


def key_metric(results: dict[str, Any]) -> dict[str, Any] | None:
    """The mean held-out AUC over every head's negative sets."""
    aucs = [
        v
        for entry in results.values()
        if isinstance(entry, dict) and isinstance(entry.get("auc"), dict)
        for v in entry["auc"].values()
        if isinstance(v, int | float)
    ]
    return {"name": "mean AUC", "value": sum(aucs) / len(aucs)} if aucs else None
