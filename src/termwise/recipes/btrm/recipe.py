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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn
from torch.utils.data import Dataset

from termwise.data.batching import pad
from termwise.data.jsonl import write_json
from termwise.errors import TermwiseUserError
from termwise.models.backbone import adapted_backbone, load_tokenizer, resolve_backbone
from termwise.models.lexical import ngram_bags, pack_bags
from termwise.objective import Objective
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import (
    TIER_NAMES,
    MembershipTable,
    build_table,
    level_rows,
    level_sample,
    plan_batches,
)
from termwise.recipes.btrm.level import fit_level
from termwise.recipes.btrm.lexical_fit import describe, prefit_lexical
from termwise.recipes.btrm.logistic_fit import LogisticReport, fit_tfidf_logistic
from termwise.recipes.btrm.model import MultiHeadRewardModel, save_reward_model
from termwise.recipes.btrm.score import encode, prompt_prefix, score_ids
from termwise.terms import TermOutput, multihead_bradley_terry, saturation_fraction, soft_cap
from termwise.trainer import StepOutput, Trainer, seed_everything
from termwise.trainer.planned import planned_batch_trainer

# -- setup ---------------------------------------------------------------------------------


@dataclass
class Prepared:
    table: MembershipTable
    tokenizer: Any
    ids: list[list[int]]
    lengths: np.ndarray
    backbone: Path
    bags: list[list[int]] | None = None  # the lexical branch's n-gram bags, per row


def check_prompt_fits(config: BtrmConfig, tokenizer: Any) -> None:
    prefix = len(tokenizer(prompt_prefix(config.meta_prompt))["input_ids"])
    if prefix > config.backbone.max_length - 16:
        raise TermwiseUserError(
            f"the meta-prompt takes {prefix} tokens, leaving fewer than 16 of max_length "
            f"{config.backbone.max_length} for the text",
            field="meta_prompt",
        )


def prepare(config: BtrmConfig) -> Prepared:
    path = resolve_backbone(config.backbone.path)
    tokenizer = load_tokenizer(path)
    check_prompt_fits(config, tokenizer)
    table = build_table(config)
    ids = encode(tokenizer, config.meta_prompt, table.texts, config.backbone.max_length)
    lexical = config.lexical
    bags = (
        ngram_bags(table.texts, lexical.buckets, lexical.word_ngrams, lexical.max_words)
        if lexical.enabled
        else None
    )
    return Prepared(table, tokenizer, ids, np.array([len(row) for row in ids]), path, bags)


def build_model(config: BtrmConfig, path: Path) -> MultiHeadRewardModel:
    backbone, hidden, pooling = adapted_backbone(path, config.backbone, config.lora)
    names = [h.name for h in config.heads]
    return MultiHeadRewardModel(backbone, hidden, names, pooling, config.logit_cap, config.lexical)


class PlannedBatches(Dataset[dict[str, Tensor]]):
    """Item i is planned batch i, padded: the loop's sampler then shuffles whole batches,
    and a resumed run rebuilds exactly the same batches from the same seed."""

    def __init__(self, prepared: Prepared, plan: list[np.ndarray], weights: np.ndarray) -> None:
        self.prepared, self.plan, self.weights = prepared, plan, weights

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        rows = self.plan[index]
        input_ids, mask = pad(
            [self.prepared.ids[i] for i in rows], self.prepared.tokenizer.pad_token_id or 0
        )
        batch = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "positive": torch.as_tensor(self.prepared.table.positive[rows]),
            "negative_weight": torch.as_tensor(self.weights[rows]),
        }
        if self.prepared.bags is not None:
            bag_ids, bag_offsets = pack_bags([self.prepared.bags[i] for i in rows])
            batch |= {"bag_ids": bag_ids, "bag_offsets": bag_offsets}
        return batch


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
                terms.log_square[h], {"target_gap": terms.target_gap[h]}
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
    )
    timing = {"prefit_seconds": prefit_seconds}
    return Session(config, prepared, model, trainer, output, train_rows, level, timing)


def training_rows(table: MembershipTable, config: BtrmConfig) -> tuple[np.ndarray, np.ndarray]:
    """The rows the heads and the regression are fitted on, and the rows of the training
    documents kept out of training to set the score level."""
    level = level_rows(table, table.split(heldout=False), config.level_fraction)
    return np.setdiff1d(table.split(heldout=False), level), level


def train(session: Session, resume: bool = False) -> None:
    """The joint steps, then the tf-idf logistic regression added to the heads and the
    score level."""
    started = time.perf_counter()
    session.trainer.fit(resume=resume)
    logistic = after_training(
        session.model,
        session.prepared,
        session.config,
        (session.train_rows, session.level_rows),
        session.trainer.console,
    )
    prefit = session.timing.get("prefit_seconds", 0.0)
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
    print_evaluation({k: v for k, v in results.items() if isinstance(v, dict)}, console)


def after_training(
    model: MultiHeadRewardModel,
    prepared: Prepared,
    config: BtrmConfig,
    rows: tuple[np.ndarray, np.ndarray],
    console: Console,
) -> LogisticReport | None:
    """What follows the joint steps and depends on nothing but their result: the tf-idf
    logistic regression fitted on the training rows and added to the heads
    (``lexical.logistic_weight``), then the score level; the regression's report (None
    when it is off). ``rows``: the training rows and the rows kept out (``training_rows``)."""
    train_rows, kept_out = rows
    logistic = None
    if prepared.bags is not None:
        logistic = fit_tfidf_logistic(model, prepared.table, prepared.bags, train_rows, config)
    if logistic is not None:
        console.print(logistic.summary(prepared.table.heads), markup=False)
    model.eval()
    attach_level(model, at_scoring_length(prepared, config), rows, logistic, console)
    return logistic


def attach_level(
    model: MultiHeadRewardModel,
    prepared: Prepared,
    rows: tuple[np.ndarray, np.ndarray],
    logistic: LogisticReport | None,
    console: Console,
) -> None:
    """Each head's score level (:mod:`termwise.recipes.btrm.level`) from the documents kept
    out of training and a sample of the training rows, with the regression's part of the
    latter out of fold; set on the model (and saved with it)."""
    table = prepared.table
    train_rows, kept_out = rows
    model.level = None
    if not len(kept_out):  # level_fraction 0: no level
        return
    sample = level_sample(table, train_rows)
    fitted_rows, scores = kept_out, score_rows(model, prepared, kept_out)
    if len(sample):
        fitted_rows = np.concatenate([kept_out, sample])
        scores = np.concatenate([scores, score_training_rows(model, prepared, sample, logistic)])
    positive, negative = table.positive[fitted_rows], table.negative_tier[fitted_rows] > 0
    level = fit_level(scores, positive, negative)
    model.level = torch.tensor(np.stack([level.scale, level.offset]), dtype=torch.float32)
    console.print(
        f"{len(kept_out)} rows of training documents kept out of training, {len(sample)} "
        "training rows with the regression's part out of fold:",
        markup=False,
    )
    console.print(level.summary(table.heads), markup=False)


def score_training_rows(
    model: MultiHeadRewardModel,
    prepared: Prepared,
    rows: np.ndarray,
    logistic: LogisticReport | None,
) -> np.ndarray:
    """Scores of training ``rows`` with the regression's part out of fold (as if the
    regression had not seen them); the model's own scores when it has no regression."""
    if logistic is None or model.heads.logistic is None:
        return score_rows(model, prepared, rows)
    installed, cap = model.heads.logistic, model.logit_cap
    model.heads.logistic, model.logit_cap = None, 0.0
    try:
        heads_part = score_rows(model, prepared, rows)
    finally:
        model.heads.logistic, model.logit_cap = installed, cap
    position = np.searchsorted(logistic.rows, rows)
    total = torch.from_numpy(heads_part + logistic.out_of_fold[position])
    return soft_cap(total, cap).numpy()


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


# -- evaluate ------------------------------------------------------------------------------


def at_scoring_length(prepared: Prepared, config: BtrmConfig) -> Prepared:
    """``prepared`` re-encoded at ``score_max_length`` when it differs from ``max_length``."""
    length = config.backbone.scoring_length
    if length == config.backbone.max_length:
        return prepared
    ids = encode(prepared.tokenizer, config.meta_prompt, prepared.table.texts, length)
    return replace(prepared, ids=ids, lengths=np.array([len(row) for row in ids]))


def score_rows(model: MultiHeadRewardModel, prepared: Prepared, rows: np.ndarray) -> np.ndarray:
    ids = [prepared.ids[r] for r in rows]
    bags = None if prepared.bags is None else [prepared.bags[r] for r in rows]
    return score_ids(model, ids, prepared.tokenizer.pad_token_id or 0, bags=bags).numpy()


def _auc(positive: np.ndarray, negative: np.ndarray) -> float | None:
    if not len(positive) or not len(negative):
        return None
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    return float(roc_auc_score(labels, np.r_[positive, negative]))


def source_name(key: str) -> str:
    path, _, tiers = key.partition("|")
    return Path(path).stem + (f"[{tiers}]" if tiers else "")


def evaluate_model(
    model: MultiHeadRewardModel, prepared: Prepared, config: BtrmConfig
) -> dict[str, Any]:
    """Per head on held-out rows: AUC vs each negative tier (``semi_firm_neg``), vs each
    source within each tier (``semi_firm_neg:<source>``, the (head, other-source) pairs),
    and the median positive score."""
    table = prepared.table
    rows = table.split(heldout=True)
    scores = score_rows(model, prepared, rows)
    results: dict[str, Any] = {}
    for h, head in enumerate(table.heads):
        pos = scores[table.positive[rows, h], h]
        tiers = table.negative_tier[rows, h]
        negatives = scores[tiers > 0, h]
        entry: dict[str, Any] = {
            "positives": int(len(pos)),
            "median_positive": float(np.median(pos)) if len(pos) else None,
            "median_negative": float(np.median(negatives)) if len(negatives) else None,
            "auc": {},
        }
        for code, name in TIER_NAMES.items():
            if name != "soft_neg":
                entry["auc"][name] = _auc(pos, scores[tiers == code, h])
            in_tier = tiers == code
            for key in np.unique(table.source[rows][in_tier]):
                chosen = in_tier & (table.source[rows] == key)
                entry["auc"][f"{name}:{source_name(key)}"] = _auc(pos, scores[chosen, h])
        results[head] = entry
    return results


def worst_source(auc: dict[str, float | None], tier: str) -> str:
    """``AUC (source)`` of the tier's hardest source, the source named in full."""
    per_source = {k: v for k, v in auc.items() if k.startswith(f"{tier}:") and v is not None}
    if not per_source:
        return "-"
    key, value = min(per_source.items(), key=lambda kv: kv[1])
    return f"{value:.3f} ({key.split(':', 1)[1]})"


def print_evaluation(results: dict[str, Any], console: Console) -> None:
    table = Table(title="Held-out evaluation per head (AUC of positives vs each negative set)")
    for column in ("head", "positives", "median score", "semi_firm", "furthest"):
        table.add_column(column)
    for column in ("worst soft source", "worst semi-firm source", "worst furthest source"):
        table.add_column(column, overflow="fold")
    for head, entry in results.items():
        auc = entry["auc"]
        table.add_row(
            head,
            str(entry["positives"]),
            _fmt(entry["median_positive"]),
            _fmt(auc.get("semi_firm_neg")),
            _fmt(auc.get("furthest_neg")),
            worst_source(auc, "soft_neg"),
            worst_source(auc, "semi_firm_neg"),
            worst_source(auc, "furthest_neg"),
        )
    console.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
