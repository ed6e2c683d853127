"""Preference pairs from JSONL: reading with per-record checks, and tokenising (prompt,
response) the same way for training, evaluation and scoring.

A row is ``{prompt, chosen, rejected, category?, subset?, margin?}`` (other keys such as
``id`` are kept as ``id`` when present and otherwise ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from termwise.data.batching import pad
from termwise.data.jsonl import iter_records, require_text
from termwise.errors import TermwiseUserError

# Joins prompt and response when the tokenizer has no chat template and no pair encoding
# (a tokenizer without a separator token): the response follows a blank line.
PLAIN_SEPARATOR = "\n\n"
OnBadRecord = Literal["error", "skip"]


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    category: str = "all"
    subset: str = "all"
    margin: float = 0.0
    id: str = ""


@dataclass
class PairsReport:
    path: Path
    rows: int = 0
    bad: list[str] = field(default_factory=list)


def _string(row: dict[str, Any], name: str, path: Path, line: int, required: bool) -> str | None:
    """A string field (may be empty); optional ones may be absent or null."""
    if name not in row or row[name] is None:
        if required:
            reason = "missing" if name not in row else "null, expected a string"
            raise TermwiseUserError(reason, path=path, line=line, field=name)
        return None
    value = row[name]
    if not isinstance(value, str):
        raise TermwiseUserError(
            f"expected a string, got {type(value).__name__}", path=path, line=line, field=name
        )
    return value


def parse_pair(row: dict[str, Any], path: Path, line: int) -> PreferencePair:
    """One checked pair; a bad field raises ``file:line: field: reason``."""
    prompt = _string(row, "prompt", path, line, required=True)
    texts = {name: require_text(row, name, path, line) for name in ("chosen", "rejected")}
    margin = row.get("margin", 0.0)
    if margin is None:
        margin = 0.0
    if isinstance(margin, bool) or not isinstance(margin, int | float):
        raise TermwiseUserError(
            f"expected a number, got {type(margin).__name__}", path=path, line=line, field="margin"
        )
    category = _string(row, "category", path, line, required=False) or "all"
    subset = _string(row, "subset", path, line, required=False) or category
    raw_id = row.get("id")
    return PreferencePair(
        prompt or "",
        texts["chosen"],
        texts["rejected"],
        category,
        subset,
        float(margin),
        "" if raw_id is None else str(raw_id),
    )


def read_pairs(
    path: Path, on_bad_record: OnBadRecord = "error", limit: int | None = None
) -> tuple[list[PreferencePair], PairsReport]:
    """Every pair in ``path``, streamed. A bad record stops with ``file:line: reason``, or
    with ``skip`` is counted in the report (never silently dropped)."""
    pairs: list[PreferencePair] = []
    report = PairsReport(path)
    skip = on_bad_record == "skip"
    for number, row, _ in iter_records(path, report.bad if skip else None):
        if limit is not None and len(pairs) >= limit:
            break
        try:
            pairs.append(parse_pair(row, path, number))
        except TermwiseUserError as error:
            if not skip:
                raise
            report.bad.append(str(error))
    report.rows = len(pairs) + len(report.bad)
    if not pairs:
        raise TermwiseUserError("no usable preference pairs", path=path)
    return pairs, report


# -- tokenising ---------------------------------------------------------------------------


def _cut(tokenizer: Any, prompt: str, response: str, budget: int) -> tuple[str, str]:
    """Cut the texts at token boundaries to about ``budget`` tokens: the prompt keeps its
    END (the question closest to the answer) and gets at most half when the response
    needs the rest; the response keeps its beginning."""
    spans = [
        tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)[
            "offset_mapping"
        ]
        for text in (prompt, response)
    ]
    n_prompt, n_response = len(spans[0]), len(spans[1])
    if n_prompt + n_response <= budget:
        return prompt, response
    keep_prompt = min(n_prompt, max(budget - n_response, budget // 2))
    keep_response = budget - keep_prompt
    prompt = prompt[spans[0][n_prompt - keep_prompt][0] :] if keep_prompt else ""
    if keep_response < n_response:
        response = response[: spans[1][keep_response][0]] if keep_response else ""
    return prompt, response


def encode_pair(
    tokenizer: Any, prompt: str, response: str, max_length: int
) -> tuple[list[int], int]:
    """Token ids of (prompt, response) and how many leading ids belong to the prompt.

    With a chat template: a user turn then an assistant turn; the prompt part ends after
    the generation prompt. Otherwise the tokenizer's pair encoding (``[CLS] prompt [SEP]
    response [SEP]`` for BERT-like models), with ``PLAIN_SEPARATOR`` after the prompt when
    the tokenizer has no separator token of its own (e.g. a causal LM without a template).
    Texts are cut first by :func:`_cut`; the tokenizer's own truncation is a safety net.
    """
    if getattr(tokenizer, "chat_template", None):
        overhead = len(_chat_ids(tokenizer, "", "")) + 4  # template tokens, merges at edges
        prompt, response = _cut(tokenizer, prompt, response, max_length - overhead)
        ids = _chat_ids(tokenizer, prompt, response)[:max_length]
        prefix = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        n_prompt = len(tokenizer(prefix, add_special_tokens=False)["input_ids"])
        return ids, min(n_prompt, len(ids))
    if tokenizer.sep_token_id is None:
        prompt += PLAIN_SEPARATOR
    special = tokenizer.num_special_tokens_to_add(pair=True)
    prompt, response = _cut(tokenizer, prompt, response, max_length - special)
    encoding = tokenizer(prompt, response, truncation="longest_first", max_length=max_length)
    sequence = encoding.sequence_ids()
    n_prompt = sequence.index(1) if 1 in sequence else len(sequence)
    return list(encoding["input_ids"]), n_prompt


def _chat_ids(tokenizer: Any, prompt: str, response: str) -> list[int]:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
        tokenize=False,
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class EncodedPairs:
    """Token ids of every pair's two sequences and their prompt lengths."""

    pairs: list[PreferencePair]
    chosen: list[list[int]]
    rejected: list[list[int]]
    chosen_prompt: list[int]
    rejected_prompt: list[int]

    def __len__(self) -> int:
        return len(self.pairs)

    def lengths(self) -> np.ndarray:
        """Per pair, the longer of its two sequences (what the pair's batch pads to)."""
        return np.array(
            [max(len(c), len(r)) for c, r in zip(self.chosen, self.rejected, strict=True)]
        )


def encode_pairs(tokenizer: Any, pairs: list[PreferencePair], max_length: int) -> EncodedPairs:
    chosen, chosen_prompt, rejected, rejected_prompt = [], [], [], []
    for pair in pairs:
        ids, n = encode_pair(tokenizer, pair.prompt, pair.chosen, max_length)
        chosen.append(ids)
        chosen_prompt.append(n)
        ids, n = encode_pair(tokenizer, pair.prompt, pair.rejected, max_length)
        rejected.append(ids)
        rejected_prompt.append(n)
    return EncodedPairs(pairs, chosen, rejected, chosen_prompt, rejected_prompt)


def collate_pairs(
    encoded: EncodedPairs, rows: list[int] | np.ndarray, pad_id: int
) -> dict[str, Tensor]:
    """One batch of ``2B`` right-padded sequences (chosen rows, then rejected rows) with
    ``attention_mask``, ``prompt_mask`` and the pairs' ``margin``."""
    sequences = [encoded.chosen[i] for i in rows] + [encoded.rejected[i] for i in rows]
    prompts = [encoded.chosen_prompt[i] for i in rows] + [encoded.rejected_prompt[i] for i in rows]
    input_ids, attention_mask = pad(sequences, pad_id)
    # Never empty: an empty prompt pools its first token.
    lengths = torch.tensor([max(n, 1) for n in prompts])
    prompt_mask = (torch.arange(input_ids.shape[1]) < lengths[:, None]).long()
    margin = torch.tensor([encoded.pairs[i].margin for i in rows], dtype=torch.float32)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "prompt_mask": prompt_mask,
        "margin": margin,
    }


# -- records to score ------------------------------------------------------------------

PAIR_FIELDS = (("chosen", "rejected"), ("a", "b"))


def parse_scoring_record(
    row: dict[str, Any], path: Path, line: int, kind: str
) -> tuple[str, tuple[str, ...]]:
    """What a record to score is: ``("pair", (first, second))`` for chosen/rejected or a/b,
    ``("single", ("response",))`` for one response (bt models only); else a
    ``file:line: field`` error."""
    _string(row, "prompt", path, line, required=True)
    for first, second in PAIR_FIELDS:
        if first in row or second in row:
            fields: tuple[str, ...] = (first, second)
            break
    else:
        if "response" not in row:
            raise TermwiseUserError("needs chosen/rejected, a/b, or response", path=path, line=line)
        if kind != "bt":
            raise TermwiseUserError(
                f"a single response needs a bt model (this one is {kind})",
                path=path,
                line=line,
                field="response",
            )
        fields = ("response",)
    for name in fields:
        require_text(row, name, path, line)
    return ("pair" if len(fields) == 2 else "single"), fields


def plan_pair_batches(lengths: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """Batches of pairs with similar lengths: a seeded shuffle, then within chunks of 32
    batches, sort by length and cut. Random across chunks, tight padding within a batch."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    chunk = batch_size * 32
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return batches


class PairBatches(Dataset[dict[str, Tensor]]):
    """Item i is planned batch i, collated (the loop's sampler shuffles whole batches)."""

    def __init__(self, encoded: EncodedPairs, plan: list[np.ndarray], pad_id: int) -> None:
        self.encoded, self.plan, self.pad_id = encoded, plan, pad_id

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return collate_pairs(self.encoded, self.plan[index], self.pad_id)
