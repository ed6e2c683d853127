"""Pairwise preference models (bt, gpm, bayes_gpm): setup, train, evaluate, save.

Setup reads and checks the pairs, tokenises (prompt, response) for both responses and plans
length-bucketed batches (pairs of similar length share a batch, so padding stays small;
the loop shuffles the batches). Training runs the shared loop; one step puts a batch's
``2B`` sequences through the backbone once. Terms:

* ``preference`` (data): ``-log sigmoid(logit - margin)``, the logit being
  ``r_c - r_r`` (bt) or ``<R v_c, v_r> / tau`` (gpm; bayes_gpm on one posterior draw).
* ``centering`` (bt, regulariser, optional): ``coef * (r_c + r_r)^2`` as in TRL.
* ``bayes_kl`` (bayes_gpm, kl): ``gaussian_kl`` on the ambient ``raw_mu``/``logvar`` with
  weight ``linear_warmup(0 -> max_kl_weight, kl_warmup_steps)``; ``bayes_kl`` and
  ``kl_beta`` are logged every logging step.

At the end the model is saved to ``OUT/model``; with dev pairs configured, a temperature is
fitted on them (``calibrate``, :mod:`termwise.recipes.pref.calibration`), saved with the
model, and the dev pairs are evaluated (``eval``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor, nn

from termwise.models.backbone import adapted_backbone, load_tokenizer, resolve_backbone
from termwise.objective import Objective, WeightSpec
from termwise.recipes.pref.calibration import (
    RAW,
    fit_calibration,
)
from termwise.recipes.pref.config import PrefConfig
from termwise.recipes.pref.data import (
    EncodedPairs,
    PairBatches,
    encode_pairs,
    plan_pair_batches,
    read_pairs,
)
from termwise.recipes.pref.dev import dev_scores, evaluate_scores
from termwise.recipes.pref.eval import (
    category_subsets,
    print_results,
)
from termwise.recipes.pref.model import (
    PairOutput,
    PreferenceModel,
    save_preference_model,
    store_calibration,
)
from termwise.schedules import linear_warmup
from termwise.terms import TermOutput, bradley_terry, gaussian_kl
from termwise.terms.preference import reward_centering
from termwise.trainer import StepOutput, Trainer, seed_everything
from termwise.trainer.planned import planned_batch_trainer

# -- setup ---------------------------------------------------------------------------------


@dataclass
class Prepared:
    encoded: EncodedPairs
    tokenizer: Any
    backbone: Path
    subsets: dict[str, set[str]]  # category -> subsets of the training pairs

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)


def prepare(config: PrefConfig, console: Console) -> Prepared:
    path = resolve_backbone(config.backbone.path)
    tokenizer = load_tokenizer(path)
    pairs, report = read_pairs(config.train_path, config.on_bad_record, config.max_pairs)
    if report.bad:
        console.print(
            f"{report.path}: skipped {len(report.bad)} bad record(s), first: {report.bad[0]}",
            markup=False,
        )
    encoded = encode_pairs(tokenizer, pairs, config.backbone.max_length)
    return Prepared(encoded, tokenizer, path, category_subsets(pairs))


def build_model(config: PrefConfig, path: Path) -> PreferenceModel:
    backbone, hidden, pooling = adapted_backbone(path, config.backbone, config.lora)
    return PreferenceModel(
        backbone,
        hidden,
        config.kind,
        pooling,
        dim=config.gpm.dim,
        tau=config.gpm.tau,
        prompt_scaling=config.gpm.prompt_scaling,
        reward_head=config.gpm.reward_head,
        init_std_ratio=config.bayes.init_std_ratio,
    )


def make_objective(config: PrefConfig) -> Objective:
    roles = {"preference": "data"}
    weights: dict[str, WeightSpec] = {}
    if config.kind == "bt" and config.bt.center_rewards_coef is not None:
        roles["centering"] = "regularizer"
        weights["centering"] = config.bt.center_rewards_coef
    if config.kind == "bayes_gpm":
        roles["bayes_kl"] = "kl"
        weights["bayes_kl"] = kl_weight_schedule(config)
    return Objective(roles, weights=weights)


def kl_weight_schedule(config: PrefConfig) -> Callable[[int], float]:
    """``kl_beta`` at each step: 0 rising linearly to ``max_kl_weight``."""
    return linear_warmup(0.0, config.bayes.max_kl_weight, config.bayes.kl_warmup_steps)


def make_loss(
    config: PrefConfig, objective: Objective
) -> Callable[[nn.Module, dict[str, Tensor], int], StepOutput]:
    beta = kl_weight_schedule(config)

    def loss_fn(model: nn.Module, batch: dict[str, Tensor], step: int) -> StepOutput:
        out: PairOutput = model(batch, n_samples=1)
        logits = out.logits.reshape(-1)
        margin = batch["margin"] if config.use_margin else 0.0
        # bradley_terry(x, 0, margin) = -log sigmoid(x - margin) for any pair logit x.
        terms: dict[str, TermOutput | None] = {
            "preference": bradley_terry(
                logits,
                torch.zeros_like(logits),
                margin=margin,
                label_smoothing=config.label_smoothing,
            )
        }
        stats: dict[str, Tensor] = {}
        if out.rewards is not None and "centering" in objective.names:
            chosen, rejected = out.rewards.chunk(2)
            terms["centering"] = reward_centering(chosen, rejected)
        if out.raw_mu is not None and out.logvar is not None:
            kl = gaussian_kl(
                out.raw_mu,
                out.logvar,
                prior_var=config.bayes.prior_var,
                regularize_mean=config.bayes.regularize_mean,
            )
            terms["bayes_kl"] = kl
            stats = {"bayes_kl": kl.stats["kl"], "kl_beta": logits.new_tensor(beta(step))}
        total, breakdown = objective(step, **terms)
        return StepOutput(total, breakdown, stats)

    return loss_fn


NAME = "pref"
KEEPS_BEST = False
OUTPUTS: tuple[str, ...] = ()

# -- train ---------------------------------------------------------------------------------


@dataclass
class Session:
    """Everything a run needs, built before the first step."""

    config: PrefConfig
    prepared: Prepared
    model: PreferenceModel
    trainer: Trainer
    console: Console


def setup(config: PrefConfig, output: Path, console: Console, resume: bool = False) -> Session:
    cfg = config.trainer
    seed_everything(cfg.seed)
    prepared = prepare(config, console)
    if config.dev_path is not None:  # a bad dev record stops the run now, not after training
        read_pairs(config.dev_path, config.on_bad_record)
    console.print(
        f"{len(prepared.encoded)} training pairs, kind {config.kind}, backbone {prepared.backbone}"
    )
    plan = plan_pair_batches(prepared.encoded.lengths(), cfg.batch_size, cfg.seed)
    model = build_model(config, prepared.backbone)
    trainer = planned_batch_trainer(
        model,
        PairBatches(prepared.encoded, plan, prepared.pad_id),
        make_loss(config, make_objective(config)),
        config,
        output,
        console,
        {"centering.weight": "bt.center_rewards_coef"},
    )
    return Session(config, prepared, model, trainer, console)


def train(session: Session, resume: bool = False) -> None:
    session.trainer.fit(resume=resume)
    session.model.eval()


def evaluate(session: Session, directory: Path) -> dict[str, Any]:
    """With ``dev_path``: fit the calibration there (when ``calibrate``), store it with the
    model in ``directory``, and evaluate on those pairs; without it, nothing to report."""
    config, console = session.config, session.console
    if config.dev_path is None:
        return {"kind": config.kind, "dev_path": None}
    tokenizer = session.prepared.tokenizer
    length, draws = config.backbone.scoring_length, config.bayes.n_samples
    pairs, scores, skipped = dev_scores(
        session.model, tokenizer, config.dev_path, length, draws, config.on_bad_record
    )
    calibration = RAW
    if config.calibrate:
        fit = fit_calibration(scores)
        store_calibration(directory, fit, config.dev_path, category_subsets(pairs))
        console.print(f"calibration: {fit.summary()}")
        console.print(
            "  (ECE after is on the pairs it was fitted on; `termwise pref eval` "
            "on other pairs measures it out of sample)"
        )
        calibration = fit.calibration
    results = evaluate_scores(pairs, scores, session.model.kind, calibration)
    results |= {"skipped_records": skipped, "kind": config.kind, "dev_path": str(config.dev_path)}
    return results


def show(results: dict[str, Any], console: Console) -> None:
    if results.get("dev_path") is None:
        console.print("no dev_path: the model is saved, nothing evaluated")
        return
    print_results(results, console, title=f"{results['kind']} on {results['dev_path']}")


def save(session: Session, directory: Path) -> None:
    """The trained model, ready to score, in ``directory``."""
    config, model, tokenizer = session.config, session.model, session.prepared.tokenizer
    save_preference_model(
        model,
        tokenizer,
        directory,
        {
            "backbone_path": str(session.prepared.backbone),
            "max_length": config.backbone.scoring_length,
            "train_max_length": config.backbone.max_length,
            "n_samples": config.bayes.n_samples,
            "trained_subsets": {c: sorted(s) for c, s in sorted(session.prepared.subsets.items())},
        },
    )


def key_metric(results: dict[str, Any]) -> dict[str, Any] | None:
    """The accuracy on the dev pairs (none without them)."""
    overall = results.get("overall")
    return (
        {"name": "overall accuracy", "value": overall} if isinstance(overall, int | float) else None
    )
