"""Padding, length-bucketed batching and the batched scoring loop, shared by every scorer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor


def pad(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask``."""
    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return input_ids, mask


def length_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None = None
) -> Iterator[list[int]]:
    """Indices grouped by similar length (longest first), so padding stays small: at most
    ``batch_size`` rows and, with ``max_tokens``, at most that many padded tokens (rows times
    the batch's longest row; a single row longer than the budget is a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for index in order:
        # Longest first: the batch's first row sets its padded width.
        width = lengths[batch[0]] if batch else lengths[index]
        full = len(batch) == batch_size or (
            max_tokens is not None and batch and (len(batch) + 1) * width > max_tokens
        )
        if full:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def map_batches(
    lengths: Sequence[int],
    run: Callable[[list[int]], Tensor],
    batch_size: int,
    max_tokens: int | None = None,
) -> Tensor:
    """``run(rows)`` over length-bucketed batches of row indices (:func:`length_batches`),
    each result ``[len(rows), ...]`` put back in input order: the one batched scoring loop
    behind every scorer. An empty input gives an empty tensor."""
    out: Tensor | None = None
    for rows in length_batches(lengths, batch_size, max_tokens):
        values = run(rows).detach().cpu()
        if out is None:
            out = values.new_empty((len(lengths), *values.shape[1:]))
        out[rows] = values
    return torch.empty(0) if out is None else out
