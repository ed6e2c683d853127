"""Fit the lexical branch alone before the joint steps (``lexical.prefit_epochs``, off by
default).

The joint steps see ``max_steps x batch_size`` rows (16,000 of the full corpora's 34,840 at
the defaults), one backbone pass each; the lexical branch is a linear model on n-gram bags
that costs nothing next to that pass, so it can be fitted first, alone, for
``prefit_epochs`` passes' worth of batches drawn as the joint steps draw them (same balance
of heads and sources, same tier weights, same loss on the soft-capped scores); it then keeps
training with the heads.

Off by default: a branch fitted on every training row memorises them (a document's rare
bigrams), so documents it never saw score below the level the log-square term holds
training positives at (docs/btrm.md has the measurement).

Sparse gradients and a lazy Adam (``SparseAdam``: no weight decay), as fastText updates only
the rows a text touches: a batch touches a few thousand of a million rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from termwise.models.lexical import pack_bags
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import MembershipTable, plan_batches
from termwise.recipes.btrm.model import MultiHeadRewardModel
from termwise.terms import multihead_bradley_terry, soft_cap


@dataclass
class PrefitResult:
    passes: int
    batches: int
    first_loss: float  # mean loss over the first window of batches (see loss_window)
    last_loss: float  # mean loss over the last window

    def summary(self) -> str:
        return (
            f"lexical branch fitted before the joint steps: {self.passes} passes over the "
            f"training rows ({self.batches} batches), loss {self.first_loss:.3f} -> "
            f"{self.last_loss:.3f}"
        )


def prefit_lexical(
    model: MultiHeadRewardModel,
    table: MembershipTable,
    bags: list[list[int]],
    lengths: np.ndarray,
    rows: np.ndarray,
    negative_weight: np.ndarray,
    config: BtrmConfig,
) -> PrefitResult | None:
    """Fit ``model.heads.lexical`` alone on ``rows``. None when there is nothing to fit
    (no branch, or ``prefit_epochs`` 0: the branch then starts at zero with the heads)."""
    branch = model.heads.lexical
    settings = config.lexical
    if branch is None or settings.prefit_epochs == 0 or not len(rows):
        return None
    per_pass = math.ceil(len(rows) / settings.prefit_batch_size)
    plan = plan_batches(
        table,
        rows,
        lengths,
        settings.prefit_batch_size,
        settings.prefit_epochs * per_pass,
        config.trainer.seed,
        balance_sources=config.balance_sources,
    )
    # A leaf of its own: the branch's table is a module parameter without sparse gradients.
    weight = torch.zeros_like(branch.bag.weight, requires_grad=True)
    device = weight.device
    optimizer = torch.optim.SparseAdam([weight], lr=settings.learning_rate)
    losses: list[float] = []
    for batch in plan:
        ids, offsets = pack_bags([bags[i] for i in batch])
        raw = F.embedding_bag(ids.to(device), weight, offsets.to(device), mode="mean", sparse=True)
        terms = multihead_bradley_terry(
            soft_cap(raw, config.logit_cap),
            torch.as_tensor(table.positive[batch], device=device),
            torch.as_tensor(negative_weight[batch], device=device),
            log_square_form=config.log_square_form,
            hard_gamma=config.hard_negative_gamma,
        )
        if not bool(terms.active.any()):
            continue
        per_head = terms.bradley_terry + config.log_square_weight * terms.log_square
        loss = per_head[terms.active].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        branch.bag.weight.copy_(weight)
    if not losses:
        return None
    window = loss_window(settings.prefit_epochs, per_pass, len(losses))
    first, last = float(np.mean(losses[:window])), float(np.mean(losses[-window:]))
    return PrefitResult(settings.prefit_epochs, len(losses), first, last)


def loss_window(passes: int, per_pass: int, batches: int) -> int:
    """Batches averaged at each end of the fit: a pass when there are several, else a
    tenth of the one pass (its first and last pass are the same batches)."""
    window = per_pass if passes > 1 else math.ceil(per_pass / 10)
    return max(1, min(window, batches))


def describe(result: PrefitResult | None, console: Console) -> None:
    if result is not None:
        console.print(result.summary(), markup=False)
