"""Variational bottleneck, as :class:`termwise.trainer.recipe.Recipe`: setup, train, save,
evaluate, show.

Terms (one :class:`termwise.Objective`, each in the breakdown):

* ``answer`` (data): reconstruction NLL of the sentence, summed over its tokens (task
  reconstruct), or the label's cross-entropy (task classify);
* ``kl`` (kl): :func:`termwise.terms.free_bits_kl` in nats per example, weighted by the
  curriculum's KL ramp; ``free_bits: auto`` re-solves the threshold every ``auto_every``
  steps (:class:`termwise.schedules.AutoFreeBits`);
* ``teacher`` (aux): ``1 - cos`` between a projection of the posterior mean and the
  teacher's sentence embedding (or KL to the teacher's class probabilities).

Every epoch the train and val diagnostics (KL raw/after, penalty reduction, free fraction,
active units, MI, teacher loss and share) are logged and judged by the health rules; early
stopping on a named metric keeps the best model in ``OUTPUT/model``.
"""

from __future__ import annotations

import copy
import functools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from termwise.health import HealthMonitor
from termwise.objective import Objective
from termwise.recipes.vae.config import CRITERION, StageConfig, VaeConfig
from termwise.recipes.vae.data import VaeData, load_data
from termwise.recipes.vae.evaluate import print_metrics
from termwise.recipes.vae.metrics import (
    Weights,
    diagnose_split,
    prefixed,
    sentence_kl,
    teacher_term,
)
from termwise.recipes.vae.model import SentenceVAE, decoder_targets, load_vae, save_vae
from termwise.schedules import AutoFreeBits, Schedule, cyclical, join, linear_warmup, piecewise
from termwise.terms import TermOutput, free_bits_kl, free_bits_raw_kl
from termwise.trainer import EarlyStopping, StepOutput, Trainer, seed_everything
from termwise.trainer.recipe import MODEL_DIR

NAME = "vae"
KEEPS_BEST = True

# -- setup ---------------------------------------------------------------------------------


@dataclass
class Curriculum:
    """The stages laid out in steps."""

    stages: list[StageConfig]
    starts: list[int]  # first step of each stage
    total: int
    kl_weight: Schedule
    teacher_weight: Schedule

    def stage_at(self, step: int) -> int:
        return max(i for i, start in enumerate(self.starts) if step >= start)


def plan_curriculum(stages: list[StageConfig], steps_per_epoch: int) -> Curriculum:
    lengths = [stage.epochs * steps_per_epoch for stage in stages]
    starts = [sum(lengths[:i]) for i in range(len(stages))]
    ramps: list[Schedule] = []
    for stage, length in zip(stages, lengths, strict=True):
        ramp = stage.kl_weight
        if ramp.shape == "cyclical":
            ramps.append(cyclical(length, ramp.cycles, 0.5, ramp.start, ramp.end))
        else:
            ramps.append(linear_warmup(ramp.start, ramp.end, length))
    return Curriculum(
        stages,
        starts,
        sum(lengths),
        join(ramps, starts[1:]),
        piecewise(starts[1:], [s.teacher_weight for s in stages]),
    )


def apply_freezing(model: SentenceVAE, stage: StageConfig) -> None:
    """Only the parts the stage does not freeze train."""
    for part, modules in model.parts().items():
        for module in modules:
            for parameter in module.parameters():
                parameter.requires_grad_(part not in stage.freeze)


def build_model(config: VaeConfig, data: VaeData) -> SentenceVAE:
    return SentenceVAE(
        len(data.vocab.words),
        config.model,
        config.data.max_tokens,
        config.task,
        teacher_dim=data.teacher.shape[1] if config.task == "reconstruct" else 0,
        n_labels=len(data.label_names),
    )


def make_objective(config: VaeConfig, curriculum: Curriculum) -> Objective:
    roles: dict[str, Any] = {"answer": "data"}
    weights: dict[str, Any] = {}
    if config.model.use_latent:
        roles["kl"] = "kl"
        weights["kl"] = curriculum.kl_weight
    if config.teacher.enabled:
        roles["teacher"] = "aux"
        weights["teacher"] = curriculum.teacher_weight
    return Objective(roles, weights=weights)


@dataclass
class Session:
    config: VaeConfig
    data: VaeData
    model: SentenceVAE
    trainer: Trainer
    curriculum: Curriculum
    auto: AutoFreeBits | None
    stopping: EarlyStopping

    def free_bits(self) -> float:
        if self.auto is not None:
            return self.auto.value
        fixed = self.config.kl.free_bits
        return 0.0 if fixed == "auto" else float(fixed)  # auto without a latent: none


@dataclass
class StageSwitch:
    """Freezes what a curriculum stage freezes when training enters it. The stage follows
    from the step, so a resumed run re-enters its stage at its first step: nothing to save."""

    curriculum: Curriculum
    console: Console
    on_stage: Callable[[int], None]
    stage: int = -1

    def enter(self, step: int, model: SentenceVAE) -> None:
        stage = self.curriculum.stage_at(step)
        if stage != self.stage:
            self.stage = stage
            apply_freezing(model, self.curriculum.stages[stage])
            self.on_stage(stage)
            self.console.print(f"stage {self.curriculum.stages[stage].name!r} from step {step}")


def make_loss(
    config: VaeConfig,
    objective: Objective,
    curriculum: Curriculum,
    auto: AutoFreeBits | None,
    console: Console,
    on_stage: Callable[[int], None] = lambda stage: None,
) -> Callable[[nn.Module, Any, int], StepOutput]:
    reduce = config.kl.reduce
    switch = StageSwitch(curriculum, console, on_stage)

    def loss_fn(model: nn.Module, batch: Any, step: int) -> StepOutput:
        assert isinstance(model, SentenceVAE)
        switch.enter(step, model)
        ids, lengths, labels, teacher = batch
        out = model(ids, lengths)
        if config.task == "classify":
            answer = F.cross_entropy(out.logits, labels, reduction="none")
        else:
            _, targets = decoder_targets(ids, lengths)
            nll = F.cross_entropy(
                out.logits.transpose(1, 2), targets, ignore_index=0, reduction="none"
            )
            answer = nll.sum(-1)
        terms: dict[str, TermOutput | Tensor | None] = {"answer": answer}
        if out.mu is not None and out.logvar is not None:
            if auto is not None:
                threshold = auto.observe(step, free_bits_raw_kl(out.mu, out.logvar, reduce))
            else:
                threshold = float(config.kl.free_bits)
            kl = free_bits_kl(out.mu, out.logvar, threshold, reduce)
            terms["kl"] = TermOutput(
                sentence_kl(kl.values, config.model.latent_dim, reduce), kl.stats
            )
        if "teacher" in objective.names:
            terms["teacher"] = teacher_term(out, teacher, config.task)
        total, breakdown = objective(step, **terms)
        return StepOutput(total, breakdown)

    return loss_fn


def stage_config_keys(config: VaeConfig, stage: int) -> dict[str, str | list[str]]:
    """Which config fields set the values health findings suggest, in one stage: the
    stage's own teacher weight, its KL weight when the stage holds it flat (a ramp has no
    single value to fix), free bits unless ``auto`` chooses them."""
    keys: dict[str, str | list[str]] = {"teacher.weight": f"stages.{stage}.teacher_weight"}
    ramp = config.stages[stage].kl_weight
    if ramp.start == ramp.end:
        keys["kl.weight"] = [f"stages.{stage}.kl_weight.start", f"stages.{stage}.kl_weight.end"]
    if config.kl.free_bits != "auto":
        keys["kl.free_bits"] = "kl.free_bits"
    return keys


def setup(config: VaeConfig, output: Path, console: Console, resume: bool = False) -> Session:
    """Load (or build) the data, plan the curriculum, build the model and the trainer."""
    seed_everything(config.trainer.seed)
    data = load_data(config, console)
    rows = data.rows("train")
    dataset = TensorDataset(
        data.ids[rows], data.lengths[rows], data.labels[rows], data.teacher[rows]
    )
    steps_per_epoch = math.ceil(len(rows) / config.trainer.batch_size)
    curriculum = plan_curriculum(config.stages, steps_per_epoch)
    objective = make_objective(config, curriculum)
    model = build_model(config, data)
    auto = None
    if config.kl.free_bits == "auto" and config.model.use_latent:
        kl = config.kl
        auto = AutoFreeBits(
            kl.auto_target, kl.auto_every, 0.0, kl.auto_max, refresh=kl.auto_refresh
        )
    trainer_config = config.trainer.model_copy(
        update={"max_steps": curriculum.total, "eval_every": steps_per_epoch}
    )
    stopping = EarlyStopping(
        config.stopping_metric,
        config.early_stopping.mode,
        config.early_stopping.patience,
    )
    monitor = HealthMonitor(every=config.trainer.health_every, run_dir=output, console=console)

    def on_stage(stage: int) -> None:
        monitor.config_keys = stage_config_keys(config, stage)

    trainer = Trainer(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=config.learning_rate),
        train_data=dataset,
        loss_fn=make_loss(config, objective, curriculum, auto, console, on_stage),
        config=trainer_config,
        run_dir=output,
        monitor=monitor,
        console=console,
        early_stopping=stopping,
        stateful={"free_bits": auto} if auto is not None else None,
    )
    session = Session(config, data, model, trainer, curriculum, auto, stopping)
    trainer.eval_fn = functools.partial(epoch_diagnostics, session)
    stopping.on_improve = functools.partial(save_best, session, output / MODEL_DIR)
    console.print(
        f"{len(rows)} training examples, {steps_per_epoch} steps an epoch, "
        f"{curriculum.total} steps in {len(config.stages)} stage(s)"
    )
    return session


def save_best(session: Session, best: Path, model: nn.Module, step: int, metrics: Any) -> None:
    """Early stopping's ``on_improve``: the new best model, with the free bits it has now."""
    assert isinstance(model, SentenceVAE)
    data, config = session.data, session.config
    save_vae(model, data.vocab, best, session.free_bits(), data.label_names, config.kl.reduce)


# -- train, evaluate, save -----------------------------------------------------------------


def train(session: Session, resume: bool = False) -> None:
    """Through the curriculum, with per-epoch diagnostics and early stopping (which saves
    the best model into ``OUTPUT/model``)."""
    session.trainer.fit(resume=resume)


def show(results: dict[str, Any], console: Console) -> None:
    shown = {k: v for k, v in results.items() if k.startswith("val_") or k == "best_step"}
    print_metrics(shown, console, title="The best model on val")
    print_success(results.get("success", {}), console)


def save(session: Session, directory: Path) -> None:
    data = session.data
    free_bits = session.free_bits()
    save_vae(
        session.model, data.vocab, directory, free_bits, data.label_names, session.config.kl.reduce
    )


def split_tensors(
    data: VaeData, split: str, limit: int | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    rows = data.rows(split)[:limit]
    return data.ids[rows], data.lengths[rows], data.labels[rows], data.teacher[rows]


def current_weights(session: Session) -> Weights:
    step = session.trainer.state.step
    curriculum = session.curriculum
    return Weights(curriculum.kl_weight(step), curriculum.teacher_weight(step), session.free_bits())


def epoch_diagnostics(session: Session, model: nn.Module) -> dict[str, float]:
    """Train and val diagnostics on ``eval_examples`` examples each."""
    assert isinstance(model, SentenceVAE)
    if next(model.parameters()).device.type != "cpu":
        model = copy.deepcopy(model).cpu()  # the diagnostics run beside the CPU data
    config = session.config
    weights = current_weights(session)
    metrics: dict[str, float] = {"free_bits": weights.free_bits, "kl_weight": weights.kl}
    for split in ("train", "val"):
        generator = torch.Generator().manual_seed(0)
        tensors = split_tensors(session.data, split, config.eval_examples)
        found = diagnose_split(model, *tensors, weights, config.kl.reduce, generator)
        metrics |= prefixed(split, found)
    key = "nll" if config.task == "reconstruct" else "loss"
    metrics["train_loss"], metrics["val_loss"] = metrics[f"train_{key}"], metrics[f"val_{key}"]
    return metrics


def evaluate(session: Session, directory: Path) -> dict[str, Any]:
    """The best model on all of val and test, with the importance-weighted NLL."""
    model, _, manifest = load_vae(directory)
    config = session.config
    end = session.curriculum.total
    curriculum = session.curriculum
    weights = Weights(curriculum.kl_weight(end), curriculum.teacher_weight(end), manifest.free_bits)
    results: dict[str, Any] = {"best_step": session.stopping.best_step}
    for split, samples in (("val", config.iw_samples), ("test", 0)):
        generator = torch.Generator().manual_seed(0)
        found = diagnose_split(
            model,
            *split_tensors(session.data, split),
            weights,
            config.kl.reduce,
            generator,
            samples,
        )
        results |= prefixed(split, found)
    results["success"] = check_success(config.success, results)
    return results


OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


def check_success(criteria: dict[str, str], metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each criterion (``"val_nll": "< 4.8"``) against the metrics: value, passed."""
    outcome: dict[str, dict[str, Any]] = {}
    for name, rule in criteria.items():
        match = CRITERION.match(rule)
        assert match is not None  # validated in the config
        value = metrics.get(name)
        passed = value is not None and OPERATORS[match.group(1)](value, float(match.group(2)))
        outcome[name] = {"rule": rule.strip(), "value": value, "passed": bool(passed)}
    return outcome


def print_success(outcome: dict[str, dict[str, Any]], console: Console) -> None:
    if not outcome:
        return
    table = Table(title="Success criteria (best model, val)")
    for column in ("metric", "criterion", "value", "result"):
        table.add_column(column)
    for name, entry in outcome.items():
        value = "missing" if entry["value"] is None else f"{entry['value']:.4g}"
        table.add_row(name, entry["rule"], value, "pass" if entry["passed"] else "FAIL")
    console.print(table)
