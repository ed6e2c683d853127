"""The training loop shared by recipes: Accelerate, checkpoints, scalars, health."""

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

__all__ = [
    "CheckpointManager",
    "EpochSampler",
    "StepOutput",
    "TrainResult",
    "TrainState",
    "Trainer",
    "TrainerConfig",
    "load_trainable",
    "load_weights",
    "read_scalars",
    "save_trainable",
    "save_weights",
    "seed_everything",
]
