"""Config of the free-bits demo (``termwise demo free-bits``)."""

from __future__ import annotations

from pydantic import Field

from termwise.config import MAX_COUNT, MAX_WIDTH, StrictModel
from termwise.trainer.config import TrainerConfig


class FreeBitsDemoConfig(StrictModel):
    """Settings of the free-bits demo."""

    free_bits: float = Field(0.1, ge=0, description="Free bits of run 1 (nats per dim).")
    latent_dim: int = Field(
        256, le=MAX_WIDTH, gt=0, description="Latent dimensions of the bottleneck."
    )
    mean_bound: float = Field(0.3, gt=0, description="Posterior means lie in +-mean_bound.")
    logvar_range: float = Field(
        0.4, gt=0, description="Posterior log-variances lie in [-logvar_range, 0]."
    )
    hidden_dim: int = Field(128, le=MAX_WIDTH, gt=0, description="Hidden width of the encoder MLP.")
    max_kl_weight: float = Field(0.5, ge=0, description="KL weight after warm-up.")
    kl_warmup_steps: int = Field(
        100, le=MAX_COUNT, ge=0, description="Steps of linear KL warm-up from 0."
    )
    label_smoothing: float = Field(0.05, ge=0, lt=1, description="Cross-entropy smoothing.")
    learning_rate: float = Field(2e-3, gt=0, description="Adam learning rate.")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Held-out share of digits.")
    trainer: TrainerConfig = Field(
        default_factory=lambda: TrainerConfig(
            max_steps=600, batch_size=128, health_every=50, log_every=25, checkpoint_every=0
        ),
        description="Shared training-loop settings.",
    )
