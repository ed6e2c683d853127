"""Settings of the shared training loop."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import Field, field_validator

from termwise.config import MAX_BATCH, MAX_COUNT, MAX_DEPTH, StrictModel
from termwise.errors import suggest

# Accelerate's trackers and the module each needs (any one of them).
TRACKER_MODULES: dict[str, tuple[str, ...]] = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "mlflow": ("mlflow",),
    "comet_ml": ("comet_ml",),
    "aim": ("aim",),
    "clearml": ("clearml",),
    "dvclive": ("dvclive",),
    "swanlab": ("swanlab",),
    "trackio": ("trackio",),
}


class TrainerConfig(StrictModel):
    """How the shared loop trains: steps, batching, logging, checkpoints, safety."""

    max_steps: int = Field(1000, le=MAX_COUNT, gt=0, description="Optimizer steps to train for.")
    batch_size: int = Field(
        32, le=MAX_BATCH, gt=0, description="Examples per step on each process."
    )
    gradient_accumulation_steps: int = Field(
        1,
        ge=1,
        le=MAX_DEPTH,
        description="Micro-batches of batch_size per optimizer step (Accelerate's "
        "accumulate): the gradient of batch_size x this many examples. Steps, schedules, "
        "logs and health count optimizer steps, each the mean over its micro-batches.",
    )
    seed: int = Field(
        0,
        ge=0,
        le=2**32 - 1,
        description="Seeds Python, NumPy and torch; fixes the data order.",
    )
    grad_clip: float | None = Field(
        1.0, gt=0, description="Clip the global gradient norm to this value; null disables."
    )
    log_every: int = Field(
        10, le=MAX_COUNT, gt=0, description="Steps between scalar rows (CSV, TensorBoard)."
    )
    health_every: int = Field(
        50, le=MAX_COUNT, gt=0, description="Steps between health-rule checks."
    )
    eval_every: int = Field(
        0, le=MAX_COUNT, ge=0, description="Steps between evaluations; 0 evaluates only at the end."
    )
    checkpoint_every: int = Field(
        500, le=MAX_COUNT, ge=0, description="Steps between checkpoints; 0 saves only at the end."
    )
    keep_checkpoints: int = Field(
        2, le=MAX_DEPTH, gt=0, description="How many recent checkpoints to keep."
    )
    checkpoint_format: Literal["auto", "termwise", "accelerate"] = Field(
        "auto",
        description="termwise: safetensors weights, optimizer and RNG saved by the main "
        "process (right for one process and DDP, whose replicas are identical). accelerate: "
        "Accelerate's save_state/load_state on every process, which gathers sharded "
        "FSDP/DeepSpeed optimizer state (loaded with weights_only). auto: accelerate under "
        "FSDP or DeepSpeed, else termwise.",
    )
    max_consecutive_nonfinite: int = Field(
        5,
        gt=0,
        le=MAX_COUNT,
        description="Stop after this many consecutive steps with a NaN/Inf loss or "
        "gradient (each one is skipped); the last good checkpoint is kept.",
    )
    mixed_precision: Literal["no", "fp16", "bf16"] = Field(
        "no", description="Accelerate mixed precision mode."
    )
    num_workers: int = Field(0, le=MAX_DEPTH, ge=0, description="DataLoader worker processes.")
    progress: bool = Field(True, description="Show a progress bar.")
    log_with: list[str] = Field(
        default_factory=lambda: ["tensorboard"],
        description="Trackers the scalars also go to, through Accelerate's tracker API "
        f"({', '.join(TRACKER_MODULES)}); each logs under run_dir/tb or its own store "
        "(WANDB_MODE=offline, MLFLOW_TRACKING_URI=file:... keep them offline). "
        "scalars.csv is always written.",
    )
    tensorboard: bool = Field(
        True, description="false leaves tensorboard out of log_with (the older switch)."
    )

    @field_validator("log_with")
    @classmethod
    def _known_and_installed(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in TRACKER_MODULES:
                raise ValueError(
                    f"unknown tracker {name!r}{suggest(name, list(TRACKER_MODULES))}; "
                    f"trackers are {', '.join(TRACKER_MODULES)}"
                )
            if not any(importlib.util.find_spec(m) for m in TRACKER_MODULES[name]):
                raise ValueError(f"tracker {name!r} is not installed (pip install {name})")
        return list(dict.fromkeys(names))

    def trackers(self) -> list[str]:
        """The trackers in force: ``log_with``, less tensorboard when ``tensorboard`` is off."""
        return [t for t in self.log_with if t != "tensorboard" or self.tensorboard]
