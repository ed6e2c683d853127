"""The training loop shared by recipes: Accelerate, named events, checkpoints, scalars, health.

Names load on first use, so a recipe config can import :class:`TrainerConfig` without
importing torch.
"""

from typing import TYPE_CHECKING

from termwise._lazy import lazy_exports

if TYPE_CHECKING:
    from termwise.trainer.callbacks import (
        BestMetric,
        EarlyStopping,
        KeepBestModel,
        TrainerCallback,
    )
    from termwise.trainer.checkpoint import (
        CheckpointManager,
        load_trainable,
        load_weights,
        save_trainable,
        save_weights,
    )
    from termwise.trainer.config import TrainerConfig
    from termwise.trainer.loop import (
        StepOutput,
        Trainer,
        TrainResult,
        TrainState,
        seed_everything,
    )
    from termwise.trainer.sampler import EpochSampler
    from termwise.trainer.scalars import read_scalars

_EXPORTS = {
    "CheckpointManager": "checkpoint",
    "load_trainable": "checkpoint",
    "load_weights": "checkpoint",
    "save_trainable": "checkpoint",
    "save_weights": "checkpoint",
    "TrainerConfig": "config",
    "BestMetric": "callbacks",
    "EarlyStopping": "callbacks",
    "KeepBestModel": "callbacks",
    "TrainerCallback": "callbacks",
    "StepOutput": "loop",
    "Trainer": "loop",
    "TrainResult": "loop",
    "TrainState": "loop",
    "seed_everything": "loop",
    "EpochSampler": "sampler",
    "read_scalars": "scalars",
}
__all__ = [
    "BestMetric",
    "CheckpointManager",
    "EarlyStopping",
    "EpochSampler",
    "KeepBestModel",
    "StepOutput",
    "TrainResult",
    "TrainState",
    "Trainer",
    "TrainerCallback",
    "TrainerConfig",
    "load_trainable",
    "load_weights",
    "read_scalars",
    "save_trainable",
    "save_weights",
    "seed_everything",
]
__getattr__ = lazy_exports(__name__, {k: f"{__name__}.{v}" for k, v in _EXPORTS.items()})
