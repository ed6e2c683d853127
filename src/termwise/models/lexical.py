"""A lexical branch: hashed word n-grams into per-output scores, as fastText reads text.

Each text becomes the bucket ids of its word n-grams (whitespace words, as fastText splits
them; n-grams up to ``word_ngrams``), hashed with CRC-32 (stable across processes and
machines, unlike Python's ``hash``) into ``buckets`` rows. The branch is an
``EmbeddingBag`` of ``[buckets, outputs]`` averaged over a text's n-grams: a linear model
on the bag of n-grams, trained jointly with whatever it is added to. Zero-initialised, so
a fresh branch adds nothing until it learns.

Its settings are :class:`termwise.models.backbone.LexicalConfig` (a config validates
without importing torch).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from termwise.models.backbone import LexicalConfig


def hashed_ngrams(text: str, buckets: int, word_ngrams: int, max_words: int) -> list[int]:
    """Bucket ids of every word n-gram of ``text`` (n = 1..word_ngrams); an empty text
    maps to bucket 0 so that every text has a non-empty bag."""
    words = text.split()[:max_words]
    ids: list[int] = []
    for n in range(1, word_ngrams + 1):
        grams = words if n == 1 else [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
        ids += [zlib.crc32(gram.encode("utf-8")) % buckets for gram in grams]
    return ids or [0]


def ngram_bags(
    texts: Sequence[str], buckets: int, word_ngrams: int, max_words: int
) -> list[list[int]]:
    """:func:`hashed_ngrams` of every text."""
    return [hashed_ngrams(text, buckets, word_ngrams, max_words) for text in texts]


def pack_bags(bags: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Flat ids and start offsets, as ``nn.EmbeddingBag`` takes them."""
    lengths = torch.tensor([len(bag) for bag in bags], dtype=torch.long)
    offsets = torch.zeros(len(bags), dtype=torch.long)
    if len(bags) > 1:
        offsets[1:] = torch.cumsum(lengths[:-1], dim=0)
    # fromiter over a chain: a batch of long texts holds ~10^6 ids, and a Python list
    # handed to torch.tensor costs several times more.
    flat = np.fromiter(
        itertools.chain.from_iterable(bags), dtype=np.int64, count=int(lengths.sum())
    )
    return torch.from_numpy(flat), offsets


class LexicalBranch(nn.Module):
    """``[batch, outputs]`` scores from bags of hashed n-grams (mean over the bag)."""

    def __init__(self, outputs: int, buckets: int, word_ngrams: int, max_words: int) -> None:
        super().__init__()
        self.buckets, self.word_ngrams, self.max_words = buckets, word_ngrams, max_words
        self.bag = nn.EmbeddingBag(buckets, outputs, mode="mean")
        nn.init.zeros_(self.bag.weight)

    def features(self, texts: Sequence[str]) -> list[list[int]]:
        return ngram_bags(texts, self.buckets, self.word_ngrams, self.max_words)

    def forward(self, ids: Tensor, offsets: Tensor) -> Tensor:
        return self.bag(ids, offsets)


def lexical_branch(outputs: int, config: LexicalConfig | None) -> LexicalBranch | None:
    """The branch ``config`` asks for (None when it is off)."""
    if config is None or not config.enabled:
        return None
    return LexicalBranch(outputs, config.buckets, config.word_ngrams, config.max_words)
