"""Running means of many scalars, kept on the device until someone asks for them."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


class DeviceMeter:
    """Sums flat vectors of scalars step by step without a host sync.

    ``add(keys, values)`` adds one step (``values[i]`` is the value of ``keys[i]``); the
    key list may change between steps (a stat appearing later), each distinct key list
    keeps its own running sum. A NaN value means "no value this step" (the stat of a term
    that was inactive, decided on the device): it is not counted. ``pop()`` syncs once per
    key list and returns the means since the last pop; a key with no value is left out.
    """

    def __init__(self) -> None:
        self._sums: dict[tuple[str, ...], tuple[Tensor, Tensor, int]] = {}

    def add(self, keys: Sequence[str], values: Tensor) -> None:
        group = tuple(keys)
        values = values.detach().float()
        present = values == values  # False only for NaN
        known = values.where(present, 0.0)  # infinities stay what they are
        found = self._sums.get(group)
        if found is None:
            self._sums[group] = (known, present.float(), 1)
        else:
            total, counts, steps = found
            total.add_(known)
            counts.add_(present)
            self._sums[group] = (total, counts, steps + 1)

    @property
    def count(self) -> int:
        return max((steps for _, _, steps in self._sums.values()), default=0)

    def pop(self) -> dict[str, float]:
        """Means per key since the last pop (keys seen in several lists are step-weighted)."""
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}
        for keys, (total, present, _) in self._sums.items():
            both = zip(keys, total.tolist(), present.tolist(), strict=True)
            for key, value, count in both:
                sums[key] = sums.get(key, 0.0) + value
                counts[key] = counts.get(key, 0.0) + count
        self._sums.clear()
        return {key: sums[key] / counts[key] for key in sums if counts[key]}
