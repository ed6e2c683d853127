"""Early stopping on a named evaluation metric, keeping the best model."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from termwise.errors import TermwiseUserError, suggest

OnImprove = Callable[[nn.Module, int, Mapping[str, float]], None]


@dataclass
class EarlyStopping:
    """Stop when ``metric`` has not improved by ``min_delta`` for ``patience``
    evaluations; ``on_improve(model, step, metrics)`` runs at each new best (a recipe saves
    its best model there). Name the metric a run is judged by (a validation loss), never
    the total objective, whose scale moves with a scheduled KL weight."""

    metric: str
    mode: Literal["min", "max"] = "min"
    patience: int = 3
    min_delta: float = 0.0
    on_improve: OnImprove | None = field(default=None, repr=False)
    best: float = math.nan
    best_step: int = -1
    bad_evaluations: int = 0

    def update(self, step: int, metrics: Mapping[str, float], model: nn.Module) -> bool:
        """Record one evaluation; returns whether it is a new best."""
        if self.metric not in metrics:
            raise TermwiseUserError(
                f"early stopping metric {self.metric!r} is not evaluated"
                f"{suggest(self.metric, list(metrics))}; metrics: {', '.join(sorted(metrics))}"
            )
        value = float(metrics[self.metric])
        sign = 1.0 if self.mode == "min" else -1.0
        improved = math.isnan(self.best) or sign * (self.best - value) > self.min_delta
        if improved:
            self.best, self.best_step, self.bad_evaluations = value, step, 0
            if self.on_improve is not None:
                self.on_improve(model, step, metrics)
        else:
            self.bad_evaluations += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.bad_evaluations >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "bad": self.bad_evaluations}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # No evaluation yet: ``best`` is NaN, which JSON stores as null.
        self.best = float("nan") if state["best"] is None else float(state["best"])
        self.best_step = int(state["best_step"])
        self.bad_evaluations = int(state["bad"])
