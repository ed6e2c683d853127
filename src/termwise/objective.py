"""Objective: named, weighted loss terms whose breakdown says what each term contributes."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor

from termwise.errors import suggest
from termwise.schedules import AutoScale, Schedule
from termwise.terms import TermOutput
from termwise.terms.stats import WANTED_WEIGHT, stat_key

TermRole = Literal["data", "kl", "aux", "regularizer"]
ROLES: tuple[str, ...] = get_args(TermRole)
WeightSpec = float | int | Schedule | AutoScale
TermValue = Tensor | TermOutput | None


def stack_scalars(values: list[Tensor]) -> Tensor:
    """0-dim tensors as one float32 vector (one op when they already are float32 0-dim)."""
    if all(v.dtype == torch.float32 and v.dim() == 0 for v in values):
        return torch.stack(values)
    return torch.stack([v.float().reshape(()) for v in values])


@dataclass(frozen=True)
class TermReport:
    """One term of a :class:`Breakdown`; every field is a detached 0-dim tensor."""

    name: str
    role: str
    raw: Tensor
    weight: Tensor
    weighted: Tensor
    share: Tensor
    active: Tensor
    at_bound: Tensor | None
    stats: dict[str, Tensor]


@dataclass(frozen=True)
class Breakdown:
    """What each term contributed at one step. Tensors stay on the device (no host sync).

    ``raw`` is the term's mean value, ``weight`` its effective weight at this step,
    ``weighted = weight * raw`` and ``share = |weighted| / sum |weighted|`` (the
    "teacher contributes 2.4 %" number). ``active`` is 0 for a term passed as ``None``
    (nothing to compute this step, e.g. a head with no positive in the batch).
    """

    step: int
    names: tuple[str, ...]
    roles: tuple[str, ...]
    raw: Tensor
    weight: Tensor
    weighted: Tensor
    share: Tensor
    active: Tensor
    total: Tensor
    autoscaled: tuple[bool, ...]
    at_bound: Tensor
    stats: dict[str, Tensor]

    def term(self, name: str) -> TermReport:
        if name not in self.names:
            raise KeyError(f"no term {name!r} in this breakdown{suggest(name, self.names)}")
        i = self.names.index(name)
        prefix = f"{name}."
        return TermReport(
            name=name,
            role=self.roles[i],
            raw=self.raw[i],
            weight=self.weight[i],
            weighted=self.weighted[i],
            share=self.share[i],
            active=self.active[i],
            at_bound=self.at_bound[i] if self.autoscaled[i] else None,
            stats={k[len(prefix) :]: v for k, v in self.stats.items() if k.startswith(prefix)},
        )

    def flat_keys(self) -> list[str]:
        keys = ["total"]
        for name, scaled in zip(self.names, self.autoscaled, strict=True):
            keys += [f"{name}.{f}" for f in ("raw", "weight", "weighted", "share", "active")]
            if scaled:
                keys.append(f"{name}.at_bound")
        return keys + list(self.stats)

    def flat(self) -> tuple[list[str], Tensor]:
        """``(flat_keys(), flat_values())``, computed once per breakdown: the trainer's scalar
        log and the health monitor read the same vector."""
        return self._flattened

    @functools.cached_property
    def _flattened(self) -> tuple[list[str], Tensor]:
        return self.flat_keys(), self.flat_values()

    def flat_values(self) -> Tensor:
        """All scalars as one float32 vector, in :meth:`flat_keys` order."""
        per_term = torch.stack([self.raw, self.weight, self.weighted, self.share, self.active], 1)
        parts: list[Tensor] = [self.total.reshape(1).float()]
        if any(self.autoscaled):
            for i, scaled in enumerate(self.autoscaled):
                parts.append(per_term[i])
                if scaled:
                    parts.append(self.at_bound[i].reshape(1))
        else:
            parts.append(per_term.reshape(-1))
        if self.stats:
            parts.append(stack_scalars(list(self.stats.values())))
        return torch.cat(parts)

    def to_dict(self) -> dict[str, float]:
        """All scalars as Python floats (one host sync)."""
        return dict(zip(self.flat_keys(), self.flat_values().tolist(), strict=True))


class Objective:
    """Named terms with weights (constants, schedules or :class:`AutoScale`).

    >>> import torch
    >>> from termwise.schedules import linear_warmup
    >>> from termwise.terms import bradley_terry, log_square
    >>> objective = Objective({"bt": "data", "logsq": "regularizer"},
    ...                       weights={"logsq": linear_warmup(0.0, 0.1, 100)})
    >>> r_pos, r_neg = torch.tensor([2.0, 0.5]), torch.tensor([0.0, 1.0])
    >>> total, breakdown = objective(50, bt=bradley_terry(r_pos, r_neg), logsq=log_square(r_pos))
    >>> scalars = breakdown.to_dict()  # what the trainer logs and the monitor reads
    >>> round(scalars["logsq.weight"], 3), round(scalars["logsq.share"], 3)
    (0.05, 0.112)

    Roles tell the health monitor what a term is for: ``data`` (the task loss), ``kl``,
    ``aux`` (auxiliary or teacher terms), ``regularizer``. Term values are tensors (any
    shape, mean-reduced), :class:`TermOutput` (values mean-reduced, stats carried into the
    breakdown as ``"name.stat"``), or ``None`` for a term with nothing to compute this step.
    Terms without a weight have weight 1.

    :meth:`combine` takes two more arguments, which decide on the device what ``None``
    decides on the host, so a loss needs no host sync: ``active`` (a ``[terms]`` mask: an
    inactive term counts 0 and its stats are NaN, which the trainer's means skip) and
    ``scale`` (a factor on the total, logged as ``total.scale``, such as btrm's mean over
    the heads that had pairs). The returned total is always the value to back-propagate.

    >>> mask = torch.tensor([True, False])
    >>> terms = {"bt": bradley_terry(r_pos, r_neg), "logsq": log_square(r_pos)}
    >>> total, breakdown = objective.combine(50, terms, active=mask, scale=torch.tensor(0.5))
    >>> torch.equal(total, 0.5 * breakdown.weighted[0]), breakdown.active.tolist()
    (True, [1.0, 0.0])
    """

    def __init__(
        self,
        terms: Mapping[str, str],
        weights: Mapping[str, WeightSpec] | None = None,
    ) -> None:
        if not terms:
            raise ValueError("Objective: needs at least one term")
        self.names: tuple[str, ...] = tuple(terms)
        for name, role in terms.items():
            if role not in ROLES:
                raise ValueError(
                    f"Objective: term {name!r} has role {role!r}; roles are {', '.join(ROLES)}"
                    + suggest(role, ROLES)
                )
        self.roles: tuple[str, ...] = tuple(terms.values())
        weights = dict(weights or {})
        for name, spec in weights.items():
            if name not in terms:
                raise ValueError(
                    f"Objective: weight for unknown term {name!r}{suggest(name, self.names)}"
                )
            if isinstance(spec, AutoScale):
                if spec.reference not in terms or spec.reference == name:
                    raise ValueError(
                        f"Objective: AutoScale weight of {name!r} needs reference= one of the "
                        f"other terms, got {spec.reference!r}"
                    )
            elif not (callable(spec) or isinstance(spec, int | float)):
                raise TypeError(
                    f"Objective: weight of {name!r} must be a number, schedule or "
                    f"AutoScale, got {type(spec).__name__}"
                )
        self.weights: dict[str, WeightSpec] = {n: weights.get(n, 1.0) for n in self.names}
        self.autoscaled = tuple(isinstance(self.weights[n], AutoScale) for n in self.names)

    def weight_at(self, name: str, step: int) -> float | None:
        """The scheduled weight of ``name`` at ``step``; ``None`` for an AutoScale weight."""
        spec = self.weights[name]
        if isinstance(spec, AutoScale):
            return None
        return float(spec) if isinstance(spec, int | float) else float(spec(step))

    def __call__(self, step: int, **values: TermValue) -> tuple[Tensor, Breakdown]:
        """The weighted total at ``step`` and its breakdown (see :meth:`combine`)."""
        return self.combine(step, values)

    def combine(
        self,
        step: int,
        values: Mapping[str, TermValue],
        active: Tensor | None = None,
        scale: Tensor | None = None,
    ) -> tuple[Tensor, Breakdown]:
        """``objective(step, **values)``, with the device-side ``active`` mask and total
        ``scale`` described in the class docstring."""
        missing = [n for n in self.names if n not in values]
        unknown = [n for n in values if n not in self.weights]
        if missing or unknown:
            hint = "".join(suggest(n, self.names) for n in unknown)
            raise ValueError(
                f"Objective: missing terms {missing}, unknown terms {unknown}{hint}; "
                "pass None for a term with nothing to compute this step"
            )
        means, stats, owners = self._reduce(values)
        raw_live = torch.stack(means)
        if active is not None:
            mask = active.to(device=raw_live.device, dtype=torch.bool)
            raw_live = raw_live.where(mask, 0.0)
            # An inactive term's stats as NaN: "no value", skipped by the trainer's means.
            for key, index in owners.items():
                stats[key] = stats[key].float().where(mask[index], math.nan)
        raw = raw_live.detach()
        weight, at_bound = self._weights(step, raw)
        stats.update(self._wanted_weights(step, raw))
        weighted_live = raw_live * weight
        total = weighted_live.sum()
        if scale is not None:
            total = total * scale
            stats["total.scale"] = scale.detach().float()
        weighted = weighted_live.detach()
        magnitude = weighted.abs()
        share = magnitude / magnitude.sum().clamp_min(1e-12)
        given = torch.tensor(
            [values[n] is not None for n in self.names], dtype=torch.float32, device=raw.device
        )
        if active is not None:
            given = given * active.to(device=raw.device, dtype=torch.float32)
        breakdown = Breakdown(
            step=step,
            names=self.names,
            roles=self.roles,
            raw=raw,
            weight=weight,
            weighted=weighted,
            share=share,
            active=given,
            total=total.detach(),
            autoscaled=self.autoscaled,
            at_bound=at_bound,
            stats=stats,
        )
        return total, breakdown

    def _reduce(
        self, values: Mapping[str, TermValue]
    ) -> tuple[list[Tensor], dict[str, Tensor], dict[str, int]]:
        """Each term's mean, the stats the terms carry, and which term carries each stat."""
        device = next(
            (
                (v.values if isinstance(v, TermOutput) else v).device
                for v in values.values()
                if v is not None
            ),
            torch.device("cpu"),
        )
        means: list[Tensor] = []
        stats: dict[str, Tensor] = {}
        owners: dict[str, int] = {}
        for index, name in enumerate(self.names):
            value = values[name]
            if value is None:
                means.append(torch.zeros((), device=device))
                continue
            if isinstance(value, TermOutput):
                for key, stat in value.stats.items():
                    stats[f"{name}.{key}"] = stat
                    owners[f"{name}.{key}"] = index
                value = value.values
            means.append(value.float().mean())
        return means, stats, owners

    def _wanted_weights(self, step: int, raw: Tensor) -> dict[str, Tensor]:
        """Each auto-scaled weight before its clamp (what a pinned clamp holds back)."""
        wanted = {}
        for i, name in enumerate(self.names):
            spec = self.weights[name]
            if isinstance(spec, AutoScale):
                assert spec.reference is not None  # checked in __init__
                reference = raw[self.names.index(spec.reference)]
                wanted[stat_key(name, WANTED_WEIGHT)] = spec.unclamped(raw[i], reference, step)
        return wanted

    def _weights(self, step: int, raw: Tensor) -> tuple[Tensor, Tensor]:
        scheduled = [self.weight_at(n, step) for n in self.names]
        weight = torch.tensor(
            [0.0 if w is None else w for w in scheduled], dtype=torch.float32, device=raw.device
        )
        at_bound = torch.zeros_like(weight)
        if any(self.autoscaled):
            for i, name in enumerate(self.names):
                spec = self.weights[name]
                if isinstance(spec, AutoScale):
                    assert spec.reference is not None  # checked in __init__
                    lam, pinned = spec(raw[i], raw[self.names.index(spec.reference)], step)
                    weight[i] = lam
                    at_bound[i] = pinned
        return weight, at_bound
