"""Named events of the training loop, as Hugging Face's ``TrainerCallback`` names them.

A recipe registers its phase logic (a curriculum stage switch, keeping the best model, a fit
after the last step) as callbacks in its ``setup``, where a reader sees it; the loss function
computes the loss and nothing else. Every hook receives the :class:`~termwise.trainer.Trainer`
and does nothing by default. A callback with a ``state_key`` and ``state_dict`` /
``load_state_dict`` is saved in every checkpoint under that key (JSON), so a resumed run
carries on as a straight one does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from torch import nn

from termwise.errors import TermwiseUserError, suggest

# The hooks' ``trainer`` is a termwise.trainer.Trainer; typed Any here because the loop
# imports this module (a subclass may annotate it as Trainer).
Trainer = Any

EVENTS = (
    "on_train_begin",
    "on_step_begin",
    "on_step_end",
    "on_evaluate",
    "on_new_best",
    "on_save",
    "on_train_end",
)


class TrainerCallback:
    """One method per event of :data:`EVENTS`; override the ones a phase needs."""

    state_key: ClassVar[str | None] = None  # set, with state_dict/load_state_dict, to be saved

    def on_train_begin(self, trainer: Trainer) -> None:
        """Before the first step (after a resume has restored the state)."""

    def on_step_begin(self, trainer: Trainer, step: int) -> None:
        """Before optimizer step ``step`` (0-based) computes its first micro-batch."""

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        """After optimizer step ``step`` was applied (or skipped as non-finite)."""

    def on_evaluate(self, trainer: Trainer, step: int, metrics: Mapping[str, float]) -> None:
        """After an evaluation at ``step`` (``trainer.state.step``) returned ``metrics``."""

    def on_new_best(self, trainer: Trainer, step: int, metrics: Mapping[str, float]) -> None:
        """When an evaluation is the best so far (fired by :class:`BestMetric`)."""

    def on_save(self, trainer: Trainer, path: Path | None) -> None:
        """After a checkpoint was written (``path`` on the main process, else None)."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the final evaluation, checkpoint and report."""


@dataclass
class BestMetric(TrainerCallback):
    """Tracks the best value of the evaluated ``metric``; each new best fires ``on_new_best``
    on every callback (:class:`KeepBestModel` saves the model there). Name the metric a run
    is judged by (a validation loss), never the total objective, whose scale moves with a
    scheduled KL weight."""

    state_key: ClassVar[str | None] = "early_stopping"  # the key older checkpoints used

    metric: str
    mode: Literal["min", "max"] = "min"
    min_delta: float = 0.0
    best: float = math.nan
    best_step: int = -1
    bad_evaluations: int = 0

    def on_evaluate(self, trainer: Trainer, step: int, metrics: Mapping[str, float]) -> None:
        if self.update(step, metrics):
            trainer.fire("on_new_best", step, metrics)

    def update(self, step: int, metrics: Mapping[str, float]) -> bool:
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
        else:
            self.bad_evaluations += 1
        return improved

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "bad": self.bad_evaluations}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # No evaluation yet: ``best`` is NaN, which JSON stores as null.
        self.best = float("nan") if state["best"] is None else float(state["best"])
        self.best_step = int(state["best_step"])
        self.bad_evaluations = int(state["bad"])


@dataclass
class EarlyStopping(BestMetric):
    """:class:`BestMetric` that stops training when ``metric`` has not improved by
    ``min_delta`` for ``patience`` evaluations."""

    patience: int = 3

    def on_evaluate(self, trainer: Trainer, step: int, metrics: Mapping[str, float]) -> None:
        super().on_evaluate(trainer, step, metrics)
        if self.should_stop:
            trainer.control.should_stop = True

    @property
    def should_stop(self) -> bool:
        return self.bad_evaluations >= self.patience


@dataclass
class KeepBestModel(TrainerCallback):
    """Saves each new best model with ``save(model, step, metrics)`` (the unwrapped model)."""

    save: Callable[[nn.Module, int, Mapping[str, float]], None]

    def on_new_best(self, trainer: Trainer, step: int, metrics: Mapping[str, float]) -> None:
        self.save(trainer.unwrapped_model, step, metrics)


@dataclass
class TrainerControl:
    """What callbacks ask of the loop (as Hugging Face's ``TrainerControl``)."""

    should_stop: bool = False
