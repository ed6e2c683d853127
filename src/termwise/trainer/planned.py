"""A trainer over pre-planned batches, as the backbone recipes (btrm, pref) use it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from rich.console import Console
from torch import nn
from torch.utils.data import Dataset

from termwise.trainer.callbacks import TrainerCallback
from termwise.trainer.checkpoint import load_trainable, load_weights, save_trainable, save_weights
from termwise.trainer.config import TrainerConfig
from termwise.trainer.loop import StepOutput, Trainer


class _Adapters(Protocol):
    @property
    def enabled(self) -> bool: ...


class BackboneRecipeConfig(Protocol):
    """What a backbone recipe's config (btrm, pref) says about its optimisation."""

    @property
    def learning_rate(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def lora(self) -> _Adapters: ...
    @property
    def trainer(self) -> TrainerConfig: ...


def parameter_groups(
    model: nn.Module, learning_rate: float, by_prefix: dict[str, float]
) -> list[dict[str, Any]]:
    """The trainable parameters in optimizer groups: one per prefix of ``by_prefix`` that
    names any (at its learning rate), the rest at ``learning_rate``."""
    groups: dict[str, list[nn.Parameter]] = {prefix: [] for prefix in by_prefix}
    rest: list[nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        prefix = next((p for p in by_prefix if name.startswith(p)), None)
        (rest if prefix is None else groups[prefix]).append(parameter)
    return [{"params": rest, "lr": learning_rate}] + [
        {"params": params, "lr": by_prefix[prefix]} for prefix, params in groups.items() if params
    ]


def planned_batch_trainer(
    model: nn.Module,
    batches: Dataset[Any],
    loss_fn: Callable[[nn.Module, Any, int], StepOutput],
    settings: BackboneRecipeConfig,
    output: Path,
    console: Console,
    config_keys: dict[str, str] | None = None,
    learning_rates: dict[str, float] | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> Trainer:
    """AdamW on the trainable parameters, the health monitor, and a loop in which each
    item of ``batches`` is one whole batch (planned by length and source; the loop's
    sampler shuffles whole batches, and a resumed run replays the same plan). With LoRA
    the checkpoints hold the trainable parameters alone. ``config_keys``: see
    :class:`termwise.health.HealthMonitor`. ``learning_rates``: parameter-name prefix ->
    its own learning rate (e.g. a lexical branch), the rest at ``settings.learning_rate``.
    ``callbacks``: the recipe's phases (:mod:`termwise.trainer.callbacks`)."""
    config = settings.trainer
    adapters_only = settings.lora.enabled
    return Trainer(
        model=model,
        optimizer=torch.optim.AdamW(
            parameter_groups(model, settings.learning_rate, learning_rates or {}),
            lr=settings.learning_rate,
            weight_decay=settings.weight_decay,
        ),
        train_data=batches,
        loss_fn=loss_fn,
        config=config.model_copy(update={"batch_size": 1}),  # each item is a planned batch
        run_dir=output,
        collate_fn=lambda items: items[0],
        config_keys=config_keys,
        callbacks=callbacks,
        console=console,
        save_model=save_trainable if adapters_only else save_weights,
        load_model=load_trainable if adapters_only else load_weights,
    )
