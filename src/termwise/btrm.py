"""Using a trained multi-head reward model from Python.

>>> scorer = termwise.btrm.load("runs/btrm/model")
>>> scorer.score(["Mr. Smith said the council would meet on Tuesday."])
[{'fiction': -1.9, 'news': 0.97, ...}]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from termwise.data.batching import length_batches, pad
from termwise.models.reward import MultiHeadRewardModel, load_reward_model

__all__ = ["RewardScorer", "encode", "length_batches", "load", "merge_lora", "pad"]

TEXT_LINE = "text:"


def prompt_prefix(meta_prompt: str) -> str:
    """What precedes every text: the meta-prompt, then a ``text:`` line."""
    return f"{meta_prompt}\n{TEXT_LINE}"


def encode(
    tokenizer: Any, meta_prompt: str, texts: Sequence[str], max_length: int
) -> list[list[int]]:
    """Token ids of ``meta-prompt + text:`` followed by each text. Truncation cuts the text
    only, never the meta-prompt (the prefix is the first segment of a pair)."""
    prefix = prompt_prefix(meta_prompt)
    encoded = tokenizer(
        [prefix] * len(texts), list(texts), truncation="only_second", max_length=max_length
    )
    return [list(ids) for ids in encoded["input_ids"]]


# Padded tokens per scoring batch. On CPU a smaller batch keeps a layer's activations in
# cache: MiniLM at 256 tokens scores ~15 % faster in batches of 16 than of 64 (bench/multihead.py).
SCORE_TOKENS = 4096


@dataclass
class RewardScorer:
    """Scores texts with a loaded model. ``bf16`` runs the backbone under bfloat16
    autocast: about twice as fast on CPUs with AMX/AVX512-BF16, scores within ~1e-2 of
    float32 (see docs/benchmarks.md); off by default."""

    model: MultiHeadRewardModel
    tokenizer: Any
    manifest: dict[str, Any]
    bf16: bool = False

    @property
    def heads(self) -> list[str]:
        return list(self.model.head_names)

    @torch.inference_mode()
    def score_tensor(
        self, texts: Sequence[str], batch_size: int = 64, max_tokens: int | None = SCORE_TOKENS
    ) -> Tensor:
        """Scores ``[len(texts), heads]`` in input order, computed in length-sorted batches
        of at most ``batch_size`` texts and ``max_tokens`` padded tokens."""
        ids = encode(
            self.tokenizer, self.manifest["meta_prompt"], texts, self.manifest["max_length"]
        )
        out = torch.empty(len(texts), len(self.heads))
        device = next(self.model.parameters()).device
        for batch in length_batches([len(row) for row in ids], batch_size, max_tokens):
            input_ids, mask = pad([ids[i] for i in batch], self.tokenizer.pad_token_id or 0)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
                scores = self.model(input_ids.to(device), mask.to(device))
            out[batch] = scores.float().cpu()
        return out

    def score(
        self, texts: Sequence[str], batch_size: int = 64, max_tokens: int | None = SCORE_TOKENS
    ) -> list[dict[str, float]]:
        scores = self.score_tensor(texts, batch_size, max_tokens).tolist()
        return [dict(zip(self.heads, row, strict=True)) for row in scores]


def merge_lora(model: MultiHeadRewardModel) -> MultiHeadRewardModel:
    """Fold LoRA adapters into the backbone weights (in place) for scoring: the same
    function with one matmul per projection instead of three, so it scores faster; the
    scores agree with the unmerged model to float rounding (~1e-6)."""
    from peft import PeftModel

    if isinstance(model.backbone, PeftModel):
        model.backbone = model.backbone.merge_and_unload()
    return model


def load(path: str | Path, merge: bool = True, bf16: bool = False) -> RewardScorer:
    """A saved reward model directory (``termwise btrm train`` writes ``OUT/model``).
    ``merge`` folds LoRA adapters into the weights (:func:`merge_lora`); ``merge=False``
    keeps the modules exactly as trained (bit-identical scores). ``bf16``: see
    :class:`RewardScorer`."""
    model, tokenizer, manifest = load_reward_model(Path(path))
    return RewardScorer(merge_lora(model) if merge else model, tokenizer, manifest, bf16)
