"""What follows btrm's joint steps, as the callback :class:`FitAfterTraining`: the tf-idf
logistic regression fitted on every training row and added to the heads
(``lexical.logistic_weight``, :mod:`termwise.recipes.btrm.logistic_fit`), then each head's
score level (:mod:`termwise.recipes.btrm.level`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from rich.console import Console

from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import level_sample, unseen_documents
from termwise.recipes.btrm.level import fit_level
from termwise.recipes.btrm.logistic_fit import LogisticReport, fit_tfidf_logistic
from termwise.recipes.btrm.model import MultiHeadRewardModel
from termwise.recipes.btrm.prepared import Prepared, at_scoring_length, score_rows
from termwise.terms import soft_cap
from termwise.trainer import Trainer, TrainerCallback


@dataclass
class FitAfterTraining(TrainerCallback):
    """``on_train_end``: :func:`after_training` on the trained model; its regression's
    report and how long the regression took are kept for the run's timing."""

    prepared: Prepared
    config: BtrmConfig
    rows: tuple[np.ndarray, np.ndarray]  # the training rows and the rows kept out
    console: Console
    logistic: LogisticReport | None = None
    seconds: float = 0.0

    def on_train_end(self, trainer: Trainer) -> None:
        started = time.perf_counter()
        model = trainer.unwrapped_model
        assert isinstance(model, MultiHeadRewardModel)
        self.logistic = after_training(model, self.prepared, self.config, self.rows, self.console)
        self.seconds = time.perf_counter() - started


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
    level = fit_level(scores, positive, negative, unseen_documents(table, kept_out))
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
    heads_part = score_rows(model, prepared, rows, jointly_trained=True)
    position = np.searchsorted(logistic.rows, rows)
    total = torch.from_numpy(heads_part + logistic.out_of_fold[position])
    return soft_cap(total, model.logit_cap).numpy()
