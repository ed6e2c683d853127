"""termwise inside a ``transformers.Trainer`` or a TRL trainer (``RewardTrainer`` ...).

No new training loop. :class:`ObjectiveLoss` is the trainer's ``compute_loss``: the user's
terms through an :class:`~termwise.objective.Objective` (weights, schedules, AutoScale).
:class:`TermwiseCallback` observes: each optimizer step's breakdown (the mean over its
gradient-accumulation micro-batches) goes to the health monitor, with the same default rules
as termwise's own Trainer, and to ``RUN_DIR/scalars.csv``; at every logging step the terms'
raw values, weights and shares join the trainer's logs, so the console, the progress bar
and every ``report_to`` tracker show them. Findings go to the console and
``RUN_DIR/health.jsonl``; ``RUN_DIR/report.json`` holds them at the end, as after
``termwise <system> train``.

>>> from termwise import Objective  # doctest: +SKIP
>>> objective = Objective({"preference": "data", "centering": "regularizer"},
...                       weights={"centering": 0.01})
>>> termwise = TermwiseCallback(ObjectiveLoss(objective, pairwise_reward_terms()))
>>> trainer = termwise.attach(RewardTrainer(model=model, args=args, train_dataset=pairs))
>>> trainer.train()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor, nn
from transformers import TrainerCallback

from termwise.health.base import Rule
from termwise.health.monitor import ConfigKeys, HealthMonitor
from termwise.health.report import print_summary, write_report
from termwise.meter import DeviceMeter
from termwise.objective import Objective, TermValue
from termwise.terms import bradley_terry, reward_centering
from termwise.trainer.scalars import ScalarWriter

TermsFn = Callable[[nn.Module, dict[str, Any]], tuple[Mapping[str, TermValue], Any]]
"""``terms(model, inputs) -> (term values by name, the model's outputs)``."""

LOGGED = (".raw", ".weight", ".share")  # what joins the trainer's logs; scalars.csv has all


def pairwise_reward_terms(centering: bool = True) -> TermsFn:
    """The terms of a pairwise reward model on TRL's preference batches (the first half of
    ``input_ids`` chosen, the second half rejected, an optional ``margin``): ``preference``
    (Bradley-Terry, per pair) and, with ``centering``, ``centering`` (``(r_c + r_r)^2``,
    TRL's ``center_rewards_coefficient`` term). The names are ``termwise pref``'s, so the
    monitor's findings read the same."""

    def terms(model: nn.Module, inputs: dict[str, Any]) -> tuple[dict[str, TermValue], Any]:
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        chosen, rejected = outputs.logits.squeeze(-1).chunk(2)
        values: dict[str, TermValue] = {
            "preference": bradley_terry(chosen, rejected, margin=inputs.get("margin", 0.0))
        }
        if centering:
            values["centering"] = reward_centering(chosen, rejected)
        return values, outputs

    return terms


class ObjectiveLoss:
    """A trainer's ``compute_loss``: ``terms(model, inputs)`` weighted by ``objective`` at the
    current step. Training micro-batches' breakdowns are kept for :class:`TermwiseCallback`
    (evaluation batches are not: they would mix held-out numbers into training windows)."""

    def __init__(self, objective: Objective, terms: TermsFn) -> None:
        self.objective = objective
        self.terms = terms
        self.step = 0
        self.step_meter = DeviceMeter()

    def __call__(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Tensor | tuple[Tensor, Any]:
        values, outputs = self.terms(model, inputs)
        total, breakdown = self.objective(self.step, **values)
        if model.training:
            keys, flat = breakdown.flat()
            self.step_meter.add(keys, flat)
        return (total, outputs) if return_outputs else total

    def pop_step(self) -> dict[str, float]:
        """The mean breakdown of the micro-batches since the last call (one host sync)."""
        return self.step_meter.pop()


class TermwiseCallback(TrainerCallback):
    """Watches an :class:`ObjectiveLoss` inside a Hugging Face trainer.

    ``run_dir``: where ``scalars.csv``, ``health.jsonl``, ``health_windows.jsonl`` and
    ``report.json`` go (default: the trainer's ``output_dir``). ``every``, ``rules`` and
    ``config_keys`` are :class:`~termwise.health.HealthMonitor`'s (``config_keys`` maps
    ``"<term>.weight"`` to the trainer argument that sets it, so a finding carries the
    change). Only the main process writes and prints.
    """

    def __init__(
        self,
        loss: ObjectiveLoss,
        run_dir: str | Path | None = None,
        *,
        every: int = 50,
        rules: Iterable[Rule] | None = None,
        config_keys: Mapping[str, ConfigKeys] | None = None,
        console: Console | None = None,
    ) -> None:
        self.loss = loss
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.every = every
        self.rules = None if rules is None else list(rules)
        self.config_keys = dict(config_keys or {})
        self.console = console or Console(stderr=True)
        self.monitor: HealthMonitor | None = None
        self.writer: ScalarWriter | None = None
        self.log_meter = DeviceMeter()
        self.last_scalars: dict[str, float] = {}

    def attach(self, trainer: Any) -> Any:
        """Make ``trainer`` compute its loss through :attr:`loss` and report through this
        callback (ahead of its trackers, so they log the terms too); returns ``trainer``."""
        trainer.compute_loss = self.loss
        # The loss is a mean per micro-batch: the trainer divides it by the accumulation
        # steps itself only when it believes the model does not (TRL sets the same).
        trainer.model_accepts_loss_kwargs = False
        trainer.callback_handler.callbacks.insert(0, self)
        return trainer

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        main = state.is_world_process_zero
        run_dir = self.run_dir or Path(args.output_dir)
        self.run_dir = run_dir
        self.monitor = HealthMonitor(
            rules=None if self.rules is None else list(self.rules),
            every=self.every,
            run_dir=run_dir if main else None,
            console=self.console if main else None,
            config_keys=self.config_keys,
        )
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            self.writer = ScalarWriter(run_dir)

    def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.loss.step = state.global_step

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        means = self.loss.pop_step()
        if not means or self.monitor is None:
            return
        keys, values = list(means), torch.tensor(list(means.values()))
        self.log_meter.add(keys, values)
        objective = self.loss.objective
        # The step just taken, counted from 0 as termwise's own Trainer counts it.
        self.monitor.observe_flat(
            state.global_step - 1, keys, values, objective.names, objective.roles
        )

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        scalars = self.log_meter.pop()
        if not scalars:
            return
        self.last_scalars = scalars
        if self.writer is not None:
            self.writer.write(state.global_step, scalars)
        if logs is not None:
            logs.update({k: v for k, v in scalars.items() if k.endswith(LOGGED)})

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, float] | None = None,
        **_: Any,
    ) -> None:
        if self.monitor is not None and metrics and "eval_loss" in metrics:
            self.monitor.report_metrics(state.global_step, {"val_loss": metrics["eval_loss"]})

    def on_train_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if self.monitor is None:
            return
        self.monitor.flush()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if not state.is_world_process_zero or self.run_dir is None:
            return
        findings = self.monitor.findings
        write_report(self.run_dir, state.global_step, self.last_scalars, findings)
        print_summary(findings, self.console)
