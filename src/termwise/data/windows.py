"""Fixed-length windows of consecutive rows, for sequence models on tabular series."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset


def window_ends(groups: np.ndarray, length: int) -> np.ndarray:
    """Rows that end a full window of ``length`` consecutive rows of one group.

    Rows must be sorted by group, then time. A window never spans two groups (two tickers,
    two sessions): its first row is ``end - length + 1`` and belongs to the same group.
    """
    if length < 1:
        raise ValueError(f"window length must be >= 1, got {length}")
    starts = np.arange(len(groups)) - (length - 1)
    valid = starts >= 0
    same = np.zeros(len(groups), dtype=bool)
    same[valid] = groups[starts[valid]] == groups[valid]
    # A group change inside the window also breaks it; group runs are contiguous, so
    # comparing the first and last row suffices.
    return np.flatnonzero(same)


class WindowDataset(Dataset[tuple[Tensor, Tensor]]):
    """``(features[end-length+1 .. end], label[end])`` for each end row, sliced on demand."""

    def __init__(self, x: np.ndarray, y: np.ndarray, ends: np.ndarray, length: int) -> None:
        self.x = torch.as_tensor(x, dtype=torch.float32)
        self.y = torch.as_tensor(y, dtype=torch.long)
        self.ends = ends
        self.length = length

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        end = int(self.ends[index])
        return self.x[end - self.length + 1 : end + 1], self.y[end]

    def tensors(self) -> tuple[Tensor, Tensor]:
        """Every window at once (for evaluation): ``[windows, length, features]``."""
        offsets = torch.arange(-self.length + 1, 1)
        rows = torch.as_tensor(self.ends)[:, None] + offsets[None, :]
        return self.x[rows], self.y[torch.as_tensor(self.ends)]
