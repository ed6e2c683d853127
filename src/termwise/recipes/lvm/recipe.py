"""Next-vector prediction, as :class:`termwise.trainer.recipe.Recipe`: setup, train,
save, evaluate, show.

Terms: ``mse`` (data; ``mean_d (pred - next)^2``, or ``1 - cos`` with ``regression:
cosine``), ``nce`` (data, weight ``contrastive.weight``;
:func:`termwise.terms.next_vector_info_nce` over the batch's targets and the window's
context sentences) and, when enabled, ``dir`` (aux; :func:`termwise.terms.directional_margin`
with the epoch's margin) weighted by an :class:`termwise.schedules.AutoScale` holding it at
the epoch's ``target_frac`` of the data term, within ``clamp``; ``dir.pos``, ``dir.neg`` and
``dir.gap`` feed ``dir.retreat``. Every epoch gates A and B run on val windows beside the
trivial predictors (copy-last, mean of context, ridge fitted on the training windows); the
best epoch (``best_metric``, default MRR while R@5 stays within 0.02 of its best) is saved
in ``OUTPUT/model`` with the ridge, and all five gates judge it at the end."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor, nn
from torch.utils.data import Dataset

from termwise.models.backbone import resolve_backbone
from termwise.objective import Objective, WeightSpec
from termwise.recipes.lvm.baselines import Ridge, trivial_predictors
from termwise.recipes.lvm.config import LvmConfig, RampByEpoch
from termwise.recipes.lvm.data import Corpus, Windows, load_corpus, make_windows
from termwise.recipes.lvm.gates import baseline_rows, print_gates, run_gates
from termwise.recipes.lvm.model import LvmManifest, NextVectorModel, load_lvm, save_lvm
from termwise.schedules import AutoScale, piecewise
from termwise.terms import directional_margin, next_vector_info_nce
from termwise.trainer import BestMetric, KeepBestModel, StepOutput, Trainer, seed_everything
from termwise.trainer.recipe import MODEL_DIR

NAME = "lvm"
KEEPS_BEST = True
# lvm eval's cache of a data file's vectors, beside the model
OUTPUTS: tuple[str, ...] = (r"\.eval-.+",)
R_AT_5_TOLERANCE = 0.02


@dataclass
class RecallGuard:
    """The best per-epoch val R@5 so far; an epoch is eligible for ``best`` only within
    ``R_AT_5_TOLERANCE`` of it. Checkpointed (``stateful``), so a resumed run chooses its
    best epoch as a straight run does."""

    best_r_at_5: float = -1.0

    def admits(self, r_at_5: float) -> bool:
        within = r_at_5 >= self.best_r_at_5 - R_AT_5_TOLERANCE
        self.best_r_at_5 = max(self.best_r_at_5, r_at_5)
        return within

    def state_dict(self) -> dict[str, Any]:
        return {"best_r_at_5": self.best_r_at_5}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best_r_at_5 = float(state["best_r_at_5"])


def by_epoch(ramp: RampByEpoch) -> Callable[[int], float]:
    return piecewise(ramp.epochs[1:], ramp.values)


class WindowData(Dataset[tuple[Tensor, Tensor, Tensor]]):
    """``(context vectors, target, previous)`` per window, gathered on demand."""

    def __init__(self, corpus: Corpus, windows: Windows) -> None:
        self.corpus, self.windows = corpus, windows

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        v, w = self.corpus.vectors, self.windows
        return v[w.context[i]], v[w.target[i]], v[w.previous[i]]


def make_objective(config: LvmConfig, steps_per_epoch: int) -> tuple[Objective, AutoScale | None]:
    """``mse`` (data), ``nce`` (data, when its weight is > 0) and ``dir`` (aux, auto-scaled
    to the MSE at the epoch's ``target_frac``, when enabled)."""
    roles: dict[str, str] = {"mse": "data"}
    weights: dict[str, WeightSpec] = {}
    contrastive = config.objective.contrastive
    if contrastive.weight > 0:
        roles["nce"], weights["nce"] = "data", contrastive.weight
    scale = None
    if config.objective.directional:
        low, high = config.objective.clamp
        target_frac = by_epoch(config.objective.target_frac)
        scale = AutoScale(
            lambda step: target_frac(step // steps_per_epoch), low, high, reference="mse"
        )
        roles["dir"], weights["dir"] = "aux", scale
    return Objective(roles, weights=weights), scale


def make_loss(
    config: LvmConfig, objective: Objective, steps_per_epoch: int
) -> Callable[[nn.Module, Any, int], StepOutput]:
    margin = by_epoch(config.objective.margin)
    directional = "dir" in objective.names
    contrastive = config.objective.contrastive

    def loss_fn(model: nn.Module, batch: Any, step: int) -> StepOutput:
        context, target, previous = batch
        epoch = step // steps_per_epoch
        pred = model(context)
        if config.objective.regression == "mse":
            # Mean over dims, as F.mse_loss: the default clamp [1e-4, 5e-2] is sized for it.
            data = (pred - target).square().mean(-1)
        else:
            data = 1.0 - (pred * target).sum(-1)
        terms: dict[str, Any] = {"mse": data}
        stats: dict[str, Tensor] = {}
        if contrastive.weight > 0:
            negatives = context if contrastive.hard_negatives else None
            terms["nce"] = next_vector_info_nce(pred, target, negatives, contrastive.temperature)
        if directional:
            current = margin(epoch)
            terms["dir"] = directional_margin(
                pred, target, previous, current, config.objective.gamma
            )
            stats["margin"] = pred.new_tensor(current)
        total, breakdown = objective(step, **terms)
        if directional:
            weighted = breakdown.term("dir").weighted, breakdown.term("mse").weighted
            stats["frac_of_mse"] = weighted[0] / weighted[1].clamp_min(1e-12)
        return StepOutput(total, breakdown, stats)

    return loss_fn


def training_documents(corpus: Corpus, fraction: float) -> list[int]:
    """The training split, or a fixed random ``fraction`` of its source documents (the same
    subset for every seed, so a learning curve compares amounts of data, not draws; the
    parts of a document split at a gap come together)."""
    documents = corpus.documents("train")
    if fraction >= 1:
        return documents
    groups = list(dict.fromkeys(corpus.group(i) for i in documents))
    keep = max(1, math.ceil(fraction * len(groups)))
    order = torch.randperm(len(groups), generator=torch.Generator().manual_seed(0))
    chosen = {groups[i] for i in order[:keep].tolist()}
    return [i for i in documents if corpus.group(i) in chosen]


@dataclass
class Session:
    config: LvmConfig
    corpus: Corpus
    train_windows: Windows
    val_windows: Windows
    ood_windows: Windows | None
    model: NextVectorModel
    trainer: Trainer
    manifest: LvmManifest
    ridge: Ridge
    guard: RecallGuard


def setup(config: LvmConfig, output: Path, console: Console, resume: bool = False) -> Session:
    seed_everything(config.trainer.seed)
    corpus = load_corpus(config.data, console)
    cut = (config.data.context, config.data.offset)
    train_windows = make_windows(
        corpus, training_documents(corpus, config.data.train_fraction), *cut
    )
    val_windows = make_windows(corpus, corpus.documents("val"), *cut)
    ood_docs = corpus.documents("ood")
    ood_windows = make_windows(corpus, ood_docs, *cut) if ood_docs else None
    steps_per_epoch = math.ceil(len(train_windows) / config.trainer.batch_size)
    model = NextVectorModel(corpus.vectors.shape[1], config.data.context, config.model)
    objective, _ = make_objective(config, steps_per_epoch)
    manifest = LvmManifest(
        format="termwise-lvm/1",
        dim=corpus.vectors.shape[1],
        context=config.data.context,
        offset=config.data.offset,
        model=config.model,
        backbone=str(resolve_backbone(config.data.backbone)),
        ood=[str(p) for p in config.data.ood],
    )
    per_epoch = val_windows.subset(torch.arange(min(len(val_windows), config.eval_windows)))
    ridge = Ridge.fit(corpus, train_windows)
    epoch_baselines = baseline_rows(trivial_predictors(ridge), corpus, per_epoch, full=False)
    guard = RecallGuard()

    def epoch_gates(model: nn.Module, step: int) -> dict[str, float]:
        report = run_gates(
            model, corpus, per_epoch, None, config.gates, full=False, baselines=epoch_baselines
        )
        a, b = report["A_offset_sweep"], report["B_retrieval"]
        metrics = {"margin": a["margin"], "cos_next": a["cos_next"], "peak": a["peak"], **b}
        metrics["target_offset"] = a["target_offset"]
        chosen = metrics.get(config.best_metric, math.nan)
        metrics["selection"] = chosen if guard.admits(b["r_at_5"]) else -math.inf
        return metrics

    def save_best(model: nn.Module, step: int, metrics: Any) -> None:
        assert isinstance(model, NextVectorModel)
        save_lvm(model, output / MODEL_DIR, manifest, ridge)

    # The best epoch by "selection" is kept in OUTPUT/model; training never stops early.
    best = [BestMetric("selection", "max"), KeepBestModel(save_best)]
    trainer = Trainer(
        model=model,
        optimizer=torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        ),
        train_data=WindowData(corpus, train_windows),
        loss_fn=make_loss(config, objective, steps_per_epoch),
        config=config.trainer.model_copy(
            update={"max_steps": config.epochs * steps_per_epoch, "eval_every": steps_per_epoch}
        ),
        run_dir=output,
        config_keys={"dir.clamp_low": "objective.clamp.0", "dir.clamp_high": "objective.clamp.1"},
        console=console,
        eval_fn=epoch_gates,
        callbacks=best,
        stateful={"recall_guard": guard},
    )
    console.print(
        f"{len(train_windows)} training windows ({steps_per_epoch} steps an epoch), "
        f"{len(val_windows)} val, {len(ood_windows) if ood_windows else 0} OOD"
    )
    return Session(
        config,
        corpus,
        train_windows,
        val_windows,
        ood_windows,
        model,
        trainer,
        manifest,
        ridge,
        guard,
    )


def train(session: Session, resume: bool = False) -> None:
    """Gates A and B every epoch; the best epoch is saved into ``OUTPUT/model``."""
    session.trainer.fit(resume=resume)


def show(results: dict[str, Any], console: Console) -> None:
    print_gates(results, console, title="Gates of the best epoch's model (val)")


def save(session: Session, directory: Path) -> None:
    save_lvm(session.model, directory, session.manifest, session.ridge)


def evaluate(session: Session, directory: Path) -> dict[str, Any]:
    """All five gates on the val windows, beside the trivial predictors on the same ones."""
    model, _ = load_lvm(directory)
    corpus, val = session.corpus, session.val_windows
    baselines = baseline_rows(trivial_predictors(session.ridge), corpus, val)
    return run_gates(
        model, corpus, val, session.ood_windows, session.config.gates, baselines=baselines
    )


def key_metric(results: dict[str, Any]) -> dict[str, Any] | None:
    """The val MRR of gate B (retrieval)."""
    mrr = (results.get("B_retrieval") or {}).get("mrr")
    return {"name": "val MRR", "value": mrr} if isinstance(mrr, int | float) else None
