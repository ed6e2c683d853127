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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from termwise.objective import Objective
from termwise.recipes.vae.config import VaeConfig
from termwise.recipes.vae.curriculum import (
    Curriculum,
    StageSwitch,
    plan_curriculum,
    stage_config_keys,
)
from termwise.recipes.vae.data import VaeData, load_data
from termwise.recipes.vae.evaluate import check_success, print_metrics, print_success
from termwise.recipes.vae.metrics import (
    Weights,
    diagnose_split,
    prefixed,
    sentence_kl,
    teacher_term,
)
from termwise.recipes.vae.model import SentenceVAE, decoder_targets, load_vae, save_vae
from termwise.schedules import AutoFreeBits
from termwise.terms import TermOutput, free_bits_kl, free_bits_raw_kl
from termwise.trainer import (
    EarlyStopping,
    KeepBestModel,
    StepOutput,
    Trainer,
    seed_everything,
)
from termwise.trainer.recipe import MODEL_DIR

NAME = "vae"
KEEPS_BEST = True
OUTPUTS: tuple[str, ...] = ()

# -- setup ---------------------------------------------------------------------------------


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


def free_bits_now(config: VaeConfig, auto: AutoFreeBits | None) -> float:
    """The free-bits threshold in force: ``auto``'s, or the configured one."""
    if auto is not None:
        return auto.value
    fixed = config.kl.free_bits
    return 0.0 if fixed == "auto" else float(fixed)  # auto without a latent: none


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
        return free_bits_now(self.config, self.auto)


def make_loss(
    config: VaeConfig, objective: Objective, auto: AutoFreeBits | None
) -> Callable[[nn.Module, Any, int], StepOutput]:
    reduce = config.kl.reduce

    def loss_fn(model: nn.Module, batch: Any, step: int) -> StepOutput:
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
        metric=config.stopping_metric,
        mode=config.early_stopping.mode,
        patience=config.early_stopping.patience,
    )
    trainer = Trainer(
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=config.learning_rate),
        train_data=dataset,
        loss_fn=make_loss(config, objective, auto),
        config=trainer_config,
        run_dir=output,
        eval_fn=functools.partial(epoch_diagnostics, config, data, curriculum, auto),
        callbacks=[
            StageSwitch(curriculum, console),
            stopping,
            KeepBestModel(functools.partial(save_best, config, data, auto, output / MODEL_DIR)),
        ],
        # Each stage owns its weights: a finding suggests the field of the stage it is in.
        config_keys=lambda step: stage_config_keys(config, curriculum.stage_at(step)),
        console=console,
        stateful={"free_bits": auto} if auto is not None else None,
    )
    console.print(
        f"{len(rows)} training examples, {steps_per_epoch} steps an epoch, "
        f"{curriculum.total} steps in {len(config.stages)} stage(s)"
    )
    return Session(config, data, model, trainer, curriculum, auto, stopping)


def save_best(
    config: VaeConfig,
    data: VaeData,
    auto: AutoFreeBits | None,
    best: Path,
    model: nn.Module,
    step: int,
    metrics: Any,
) -> None:
    """Each new best model, with the free bits it has now."""
    assert isinstance(model, SentenceVAE)
    free_bits = free_bits_now(config, auto)
    save_vae(model, data.vocab, best, free_bits, data.label_names, config.kl.reduce)


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


def epoch_diagnostics(
    config: VaeConfig,
    data: VaeData,
    curriculum: Curriculum,
    auto: AutoFreeBits | None,
    model: nn.Module,
    step: int,
) -> dict[str, float]:
    """Train and val diagnostics on ``eval_examples`` examples each, under the weights in
    force at ``step``."""
    assert isinstance(model, SentenceVAE)
    if next(model.parameters()).device.type != "cpu":
        model = copy.deepcopy(model).cpu()  # the diagnostics run beside the CPU data
    free_bits = free_bits_now(config, auto)
    weights = Weights(curriculum.kl_weight(step), curriculum.teacher_weight(step), free_bits)
    metrics: dict[str, float] = {"free_bits": weights.free_bits, "kl_weight": weights.kl}
    for split in ("train", "val"):
        generator = torch.Generator().manual_seed(0)
        tensors = split_tensors(data, split, config.eval_examples)
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


def key_metric(results: dict[str, Any]) -> dict[str, Any] | None:
    """None: the trainer's held-out metrics (``val_loss``) stand for the run."""
    return None
