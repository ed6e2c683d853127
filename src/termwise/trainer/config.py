"""Settings of the shared training loop."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from termwise.config import StrictModel


class TrainerConfig(StrictModel):
    """How the shared loop trains: steps, batching, logging, checkpoints, safety."""

    max_steps: int = Field(1000, gt=0, description="Optimizer steps to train for.")
    batch_size: int = Field(32, gt=0, description="Examples per step on each process.")
    seed: int = Field(0, description="Seeds Python, NumPy and torch; fixes the data order.")
    grad_clip: float | None = Field(
        1.0, gt=0, description="Clip the global gradient norm to this value; null disables."
    )
    log_every: int = Field(10, gt=0, description="Steps between scalar rows (CSV, TensorBoard).")
    health_every: int = Field(50, gt=0, description="Steps between health-rule checks.")
    eval_every: int = Field(
        0, ge=0, description="Steps between evaluations; 0 evaluates only at the end."
    )
    checkpoint_every: int = Field(
        500, ge=0, description="Steps between checkpoints; 0 saves only at the end."
    )
    keep_checkpoints: int = Field(2, gt=0, description="How many recent checkpoints to keep.")
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
        description="Stop after this many consecutive steps with a NaN/Inf loss or "
        "gradient (each one is skipped); the last good checkpoint is kept.",
    )
    mixed_precision: Literal["no", "fp16", "bf16"] = Field(
        "no", description="Accelerate mixed precision mode."
    )
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    progress: bool = Field(True, description="Show a progress bar.")
    tensorboard: bool = Field(True, description="Also write TensorBoard scalars (run_dir/tb).")
