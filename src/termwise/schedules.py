"""Schedules: plain ``step -> float`` callables that compose (optax style).

A schedule is any ``Callable[[int], float]``; the constructors here return closures that
validate their arguments once, at construction. :class:`AutoScale` is the exception: it
sets a weight from the current term values, so it is a small stateful object rather than a
function of the step.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

Schedule = Callable[[int], float]


def constant(value: float) -> Schedule:
    """``value`` at every step.

    >>> constant(0.3)(10_000)
    0.3
    """
    value = float(value)

    def schedule(step: int) -> float:
        return value

    return schedule


def linear_warmup(start: float, end: float, steps: int) -> Schedule:
    """Linear from ``start`` at step 0 to ``end`` at ``steps``, then ``end``.

    ``linear_warmup(0.0, 0.05, 500)`` is the Bayesian GPM's KL warm-up: 0.025 at step 250.

    >>> warmup = linear_warmup(0.0, 0.05, 500)
    >>> warmup(0), warmup(250), warmup(10_000)
    (0.0, 0.025, 0.05)
    """
    if steps < 0:
        raise ValueError(f"linear_warmup: steps must be >= 0, got {steps}")
    start, end = float(start), float(end)

    def schedule(step: int) -> float:
        if steps == 0 or step >= steps:
            return end
        return start + (end - start) * max(step, 0) / steps

    return schedule


def piecewise(boundaries: Sequence[int], values: Sequence[float]) -> Schedule:
    """Piecewise constant: ``values[0]`` before ``boundaries[0]``, ``values[i]`` from
    ``boundaries[i-1]`` on. ``len(values) == len(boundaries) + 1``.

    The epoch margin ramp "0.02 / 0.04 / 0.05 at epochs 0 / 2 / 5" is
    ``piecewise([2, 5], [0.02, 0.04, 0.05])`` called with the epoch.

    >>> by_epoch = piecewise([2, 5], [0.02, 0.04, 0.05])
    >>> [by_epoch(epoch) for epoch in (0, 1, 2, 5, 9)]
    [0.02, 0.02, 0.04, 0.05, 0.05]
    """
    bounds = [int(b) for b in boundaries]
    vals = [float(v) for v in values]
    if len(vals) != len(bounds) + 1:
        raise ValueError(
            f"piecewise: need len(values) == len(boundaries) + 1, got {len(vals)} values "
            f"for {len(bounds)} boundaries"
        )
    if any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)):
        raise ValueError(f"piecewise: boundaries must increase strictly, got {bounds}")

    def schedule(step: int) -> float:
        return vals[bisect.bisect_right(bounds, step)]

    return schedule


def cyclical(
    total_steps: int,
    n_cycle: int = 4,
    ratio: float = 0.5,
    start: float = 0.0,
    end: float = 1.0,
) -> Schedule:
    """Cyclical annealing (Fu et al. 2019): ``n_cycle`` cycles over ``total_steps``; in each,
    the value rises linearly from ``start`` to ``end`` over the first ``ratio`` of the
    cycle, then holds at ``end``. After ``total_steps`` it stays at ``end``.

    >>> beta = cyclical(total_steps=8, n_cycle=2, ratio=0.5)
    >>> [round(beta(step), 2) for step in range(8)]
    [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
    """
    if total_steps <= 0 or n_cycle <= 0:
        raise ValueError("cyclical: total_steps and n_cycle must be > 0")
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"cyclical: ratio must be in (0, 1], got {ratio}")
    period = total_steps / n_cycle
    rise = period * ratio

    def schedule(step: int) -> float:
        if step >= total_steps:
            return float(end)
        position = math.fmod(max(step, 0), period)
        if position >= rise:
            return float(end)
        return start + (end - start) * position / rise

    return schedule


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Run ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]`` with its step
    counted from that boundary, and so on (optax ``join_schedules``).

    >>> schedule = join([constant(0.0), linear_warmup(0.0, 1.0, 10)], boundaries=[5])
    >>> [schedule(step) for step in (0, 4, 5, 10, 15)]
    [0.0, 0.0, 0.0, 0.5, 1.0]
    """
    bounds = [int(b) for b in boundaries]
    if len(schedules) != len(bounds) + 1:
        raise ValueError(
            f"join: need len(schedules) == len(boundaries) + 1, got {len(schedules)} and "
            f"{len(bounds)}"
        )
    if any(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:], strict=False)):
        raise ValueError(f"join: boundaries must increase strictly, got {bounds}")
    starts = [0, *bounds]

    def schedule(step: int) -> float:
        index = bisect.bisect_right(bounds, step)
        return schedules[index](step - starts[index])

    return schedule


@dataclass
class AutoScale:
    """Weight that keeps a term at ``target_fraction`` of a reference term.

    ``lambda_eff = clamp(reference.detach() * target_fraction / term.detach(), lo, hi)``.
    Both values are detached: the weight is a setting, not a path for gradients (with a
    gradient through lambda the term could shrink its own weight by growing).

    Used as a weight of :class:`termwise.Objective` with ``reference`` naming the term to
    scale against (e.g. the directional margin auto-scaled to the MSE). A lambda sitting at
    ``lo`` or ``hi`` is not following its target any more; the objective reports that per
    step and the health rule ``autoscale.pinned`` flags a window where it happens >= 90 %.

    >>> import torch
    >>> scale = AutoScale(target_fraction=0.1, lo=1e-4, hi=1.0)
    >>> weight, at_bound = scale(torch.tensor(2.0), torch.tensor(1.0))  # (term, reference)
    >>> round(float(weight), 4), float(at_bound)  # 0.1 * 1.0 / 2.0, inside the clamp
    (0.05, 0.0)
    """

    target_fraction: float | Schedule  # a constant, or step -> fraction (a ramp)
    lo: float
    hi: float
    reference: str | None = None

    def __post_init__(self) -> None:
        if not callable(self.target_fraction) and self.target_fraction <= 0:
            raise ValueError(f"AutoScale: target_fraction must be > 0, got {self.target_fraction}")
        if not 0 <= self.lo < self.hi:
            raise ValueError(f"AutoScale: need 0 <= lo < hi, got lo={self.lo}, hi={self.hi}")

    def fraction_at(self, step: int) -> float:
        """The target fraction at ``step`` (the constant, or the ramp's value there)."""
        target = self.target_fraction
        return float(target(step)) if callable(target) else float(target)

    def __call__(self, term: Tensor, reference: Tensor, step: int = 0) -> tuple[Tensor, Tensor]:
        """Return ``(lambda_eff, at_bound)`` as 0-dim detached tensors (no host sync);
        ``at_bound`` is 1 at ``hi``, -1 at ``lo``, 0 between."""
        raw = self.unclamped(term, reference, step)
        lam = raw.clamp(self.lo, self.hi)
        # +1 at hi, -1 at lo: a window's mean then says which clamp holds it.
        at_bound = (raw >= self.hi).float() - (raw <= self.lo).float()
        return lam, at_bound

    def unclamped(self, term: Tensor, reference: Tensor, step: int = 0) -> Tensor:
        """The weight the target fraction asks for before the clamp (logged by the
        objective as ``<term>.wanted_weight``: where a pinned clamp should move)."""
        term, reference = term.detach().float(), reference.detach().float()
        return reference * self.fraction_at(step) / term.abs().clamp_min(1e-12)

    def state_dict(self) -> dict[str, float | int | str | None]:
        return {
            "target_fraction": None if callable(self.target_fraction) else self.target_fraction,
            "lo": self.lo,
            "hi": self.hi,
            "reference": self.reference,
        }


class AutoFreeBits:
    """A free-bits threshold set from the KL the model has, so that ``penalty_reduction``
    sits at ``target`` (30 %: the middle of the healthy band of ``free_bits.band``).

    ``observe`` takes the per-token raw KL of a step (per token for ``mean_dims`` and
    ``sum_dims``, per (token, dim) entry for ``per_dim``, in the same units as
    :func:`termwise.terms.free_bits_kl`); every ``refresh`` steps the threshold is solved on
    the values of the last ``every`` steps: with ``kl_after = mean(max(k - fb, 0))``,
    ``penalty_reduction(fb) = mean(min(k, fb)) / mean(k)``, which rises with ``fb``, so a
    bisection finds the ``fb`` giving ``target``, clamped to ``[lo, hi]``.

    ``refresh`` defaults to ``every // 4``: a threshold solved on a KL that has since moved
    (an annealed KL weight pushes the KL down as it rises) is replaced within a quarter of
    the window instead of being held for a whole window, too generous all the while.

    What it does to the gradient: tokens (or entries) whose KL is under the threshold get
    NO KL gradient at all, the others the full gradient. ``target=0.3`` waives about 30 %
    of the KL penalty, mostly on the tokens with the least KL, so the bottleneck keeps
    some information everywhere instead of being pushed to zero.

    >>> import torch
    >>> auto = AutoFreeBits(target=0.3, every=4)
    >>> for step in range(8):  # every token's KL is 0.5 nats
    ...     threshold = auto.observe(step, torch.full((16,), 0.5))
    >>> round(threshold, 3)  # clamp(0.5 - t) = 0.7 * 0.5: penalty reduction 0.3
    0.15
    """

    def __init__(
        self,
        target: float = 0.3,
        every: int = 50,
        lo: float = 0.0,
        hi: float = 1.0,
        initial: float = 0.0,
        refresh: int | None = None,
    ) -> None:
        if not 0.0 < target < 1.0:
            raise ValueError(f"AutoFreeBits: target must be in (0, 1), got {target}")
        if every < 1 or not 0.0 <= lo <= hi:
            raise ValueError("AutoFreeBits: need every >= 1 and 0 <= lo <= hi")
        refresh = max(1, every // 4) if refresh is None else refresh
        if not 1 <= refresh <= every:
            raise ValueError(f"AutoFreeBits: refresh must be in [1, every], got {refresh}")
        self.target, self.every, self.lo, self.hi = target, every, lo, hi
        self.refresh = refresh
        self.value = float(initial)
        self._recent: deque[Tensor] = deque(maxlen=every)

    def observe(self, step: int, kl_values: Tensor) -> float:
        """Record a step's raw KL values; returns the threshold to use at this step."""
        # Kept on the device: the one host transfer happens when the threshold is solved.
        self._recent.append(kl_values.detach().float().flatten())
        if step > 0 and step % self.refresh == 0:
            self.value = self.solve(torch.cat(list(self._recent)).cpu())
        return self.value

    def solve(self, kl: Tensor) -> float:
        total = float(kl.clamp_min(0).mean())
        if total <= 0:
            return self.lo
        low, high = 0.0, float(kl.max())
        for _ in range(40):
            middle = (low + high) / 2
            reduction = float(torch.minimum(kl.clamp_min(0), torch.tensor(middle)).mean()) / total
            low, high = (middle, high) if reduction < self.target else (low, middle)
        return min(max((low + high) / 2, self.lo), self.hi)

    def state_dict(self) -> dict[str, Any]:
        """The threshold and the KL of the last ``every`` steps (a resumed run solves the
        next one on the same values as an uninterrupted run)."""
        return {"value": self.value, "recent": [t.tolist() for t in self._recent]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.value = float(state["value"])
        recent = [torch.tensor(v, dtype=torch.float32) for v in state.get("recent", [])]
        self._recent = deque(recent, maxlen=self.every)
