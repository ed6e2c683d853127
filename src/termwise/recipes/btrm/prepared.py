"""The membership table, tokenised once: what training, the level fit and evaluation read.

:func:`prepare` reads and labels every source, wraps each text in the meta-prompt and
tokenises it (and builds the lexical branch's n-gram bags); :func:`at_scoring_length`
re-encodes it at the scoring length; :func:`score_rows` scores some of its rows;
:class:`PlannedBatches` serves its planned training batches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from termwise.data.batching import pad
from termwise.errors import TermwiseUserError
from termwise.models.backbone import load_tokenizer, resolve_backbone
from termwise.models.lexical import ngram_bags, pack_bags
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import MembershipTable, build_table
from termwise.recipes.btrm.model import MultiHeadRewardModel
from termwise.recipes.btrm.score import encode, prompt_prefix, score_ids


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


def at_scoring_length(prepared: Prepared, config: BtrmConfig) -> Prepared:
    """``prepared`` re-encoded at ``score_max_length`` when it differs from ``max_length``."""
    length = config.backbone.scoring_length
    if length == config.backbone.max_length:
        return prepared
    ids = encode(prepared.tokenizer, config.meta_prompt, prepared.table.texts, length)
    return replace(prepared, ids=ids, lengths=np.array([len(row) for row in ids]))


def score_rows(
    model: MultiHeadRewardModel,
    prepared: Prepared,
    rows: np.ndarray,
    jointly_trained: bool = False,
) -> np.ndarray:
    """Scores ``[rows, heads]``; ``jointly_trained``: see :meth:`MultiHeadRewardModel.forward`."""
    ids = [prepared.ids[r] for r in rows]
    bags = None if prepared.bags is None else [prepared.bags[r] for r in rows]
    pad_id = prepared.tokenizer.pad_token_id or 0
    return score_ids(model, ids, pad_id, bags=bags, jointly_trained=jointly_trained).numpy()


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
