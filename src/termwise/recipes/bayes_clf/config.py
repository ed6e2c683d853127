"""Config of the Bayesian sequence classifier (``termwise bayes-clf``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, model_validator

from termwise.config import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_WIDTH,
    ExistingFile,
    StrictModel,
    check_heads_divide,
)
from termwise.trainer.config import TrainerConfig


class BayesDataConfig(StrictModel):
    """Where the sequences come from."""

    path: ExistingFile = Field(..., description="CSV, Parquet or JSONL table (or OHLCV bars).")
    target: str = Field(
        ..., description="Target column, or with ohlcv a built target such as direction_5."
    )
    ohlcv: bool = Field(False, description="Build per-bar features and targets from OHLCV.")
    features: list[str] | None = Field(
        None, description="Per-step feature columns (default: every numeric column)."
    )
    time_col: str | None = Field(None, description="Orders rows; the split is chronological.")
    group_col: str | None = Field(None, description="Series id: windows never span two.")
    window: int = Field(32, le=MAX_LENGTH, ge=2, description="Steps per sequence.")
    test_fraction: float = Field(0.25, gt=0, lt=1, description="Latest share held out.")

    @model_validator(mode="after")
    def _ohlcv_names_no_columns(self) -> BayesDataConfig:
        # OHLCV bars build their own features and find time and ticker columns by name: a
        # column named here would be silently ignored.
        named = [k for k in ("features", "time_col", "group_col") if getattr(self, k)]
        if self.ohlcv and named:
            raise ValueError(
                f"{', '.join(named)}: not used with ohlcv: true (the features are built from "
                "the bars; time and ticker columns are found by name); leave it out"
            )
        return self


class BayesModelConfig(StrictModel):
    """Shape of the classifier and its weight prior."""

    d_model: int = Field(64, le=MAX_WIDTH, gt=0, description="Width of the transformer.")
    layers: int = Field(2, le=MAX_DEPTH, gt=0, description="Transformer encoder layers.")
    heads: int = Field(4, le=MAX_DEPTH, gt=0, description="Attention heads (must divide d_model).")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout in encoder and head.")
    prior_sigma: float = Field(1.0, gt=0, description="Std of the N(0, s^2) weight prior.")
    posterior_std_init: float = Field(0.01, gt=0, description="Initial posterior std.")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> BayesModelConfig:
        check_heads_divide(self.d_model, self.heads, "d_model")
        return self


class BayesClfConfig(StrictModel):
    """``termwise bayes-clf`` settings."""

    data: BayesDataConfig = Field(..., description="The sequences.")
    model: BayesModelConfig = Field(default_factory=BayesModelConfig, description="Model.")
    kl_weight: NonNegativeFloat | Literal["1/N"] = Field(
        "1/N",
        description="Weight of the KL term: a number, or 1/N (N = training windows, "
        "the ELBO's scaling).",
    )

    learning_rate: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Cross-entropy smoothing.")
    trainer: TrainerConfig = Field(
        default_factory=lambda: TrainerConfig(
            max_steps=400, batch_size=64, health_every=25, checkpoint_every=0
        ),
        description="Shared training-loop settings.",
    )
