"""A shuffling sampler whose position can be saved and restored exactly."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    """A fresh permutation per epoch, seeded by ``(seed, epoch)``, starting at ``start``.

    Resuming sets the epoch and the number of examples already consumed (by all processes),
    so the resumed run sees exactly the examples the uninterrupted run would have seen,
    without loading the skipped ones. With several processes each takes every
    ``world_size``-th example from its ``rank`` on (as ``DistributedSampler`` does), so the
    data order is the same whatever the number of processes. The permutation is padded
    with its own first items to a multiple of ``world_size``, so every rank gets the same
    number of examples per epoch and their epoch counters (and resumed positions) agree.
    """

    def __init__(
        self, size: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        repeats = -(-self.padded_size // self.size)
        order = (order * repeats)[: self.padded_size]
        return iter(order[self.start + self.rank :: self.world_size])

    @property
    def padded_size(self) -> int:
        return -(-self.size // self.world_size) * self.world_size

    def __len__(self) -> int:
        return len(range(self.start + self.rank, self.padded_size, self.world_size))
