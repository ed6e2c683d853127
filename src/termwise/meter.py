"""Running means of many scalars, kept on the device until someone asks for them."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


class DeviceMeter:
    """Sums flat vectors of scalars step by step without a host sync.

    ``add(keys, values)`` adds one step (``values[i]`` is the value of ``keys[i]``); the
    key list may change between steps (a stat appearing later), each distinct key list
    keeps its own running sum. ``pop()`` syncs once per key list and returns the means
    since the last pop.
    """

    def __init__(self) -> None:
        self._sums: dict[tuple[str, ...], tuple[Tensor, int]] = {}

    def add(self, keys: Sequence[str], values: Tensor) -> None:
        group = tuple(keys)
        found = self._sums.get(group)
        if found is None:
            self._sums[group] = (values.detach().float().clone(), 1)
        else:
            total, count = found
            total.add_(values.detach().float())
            self._sums[group] = (total, count + 1)

    @property
    def count(self) -> int:
        return max((count for _, count in self._sums.values()), default=0)

    def pop(self) -> dict[str, float]:
        """Means per key since the last pop (keys seen in several lists are step-weighted)."""
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for keys, (total, count) in self._sums.items():
            for key, value in zip(keys, total.tolist(), strict=True):
                sums[key] = sums.get(key, 0.0) + value
                counts[key] = counts.get(key, 0) + count
        self._sums.clear()
        return {key: sums[key] / counts[key] for key in sums}
