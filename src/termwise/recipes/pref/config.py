"""Config of the pairwise preference models (``termwise pref``)."""

from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from termwise.config import MAX_COUNT, MAX_SAMPLES, MAX_WIDTH, ExistingFile, StrictModel
from termwise.errors import TermwiseDeprecationWarning
from termwise.models.backbone import BackboneConfig, LoraConfig
from termwise.trainer.config import TrainerConfig

PreferenceKind = Literal["bt", "gpm", "bayes_gpm"]
KINDS: tuple[str, ...] = ("bt", "gpm", "bayes_gpm")
# Embedding size when a config leaves it out, per kind: each measured at the defaults.
GPM_DIM = {"gpm": 2, "bayes_gpm": 8}
# Logit temperature when a config leaves it out, per kind: gpm's was chosen on the
# leave-one-subset-out bench over five seeds (docs/pref.md); bayes_gpm keeps the earlier one.
GPM_TAU = {"gpm": 0.15, "bayes_gpm": 0.1}
# Learning rate when a config leaves it out, per kind: gpm's was chosen on the
# leave-one-subset-out bench (docs/pref.md); bt and bayes_gpm keep the earlier default.
LEARNING_RATE = {"bt": 2e-4, "gpm": 4e-4, "bayes_gpm": 2e-4}


class BtConfig(StrictModel):
    """The scalar Bradley-Terry head."""

    center_rewards_coef: float | None = Field(
        None,
        ge=0,
        description="Adds coef * mean((r_chosen + r_rejected)^2), as TRL's "
        "center_rewards_coefficient (null: off).",
    )


class GpmConfig(StrictModel):
    """The General Preference Model embedding (also used by bayes_gpm)."""

    dim: int = Field(
        8,
        ge=2,
        le=MAX_WIDTH,
        description="Embedding size 2k (even): k rotation blocks. Left out of a pref "
        "config: 2 for kind gpm (one block: better held-out accuracy and calibration than 8 "
        "at the default 500 steps, docs/benchmarks.md), 8 for bayes_gpm.",
    )
    tau: float = Field(
        0.1,
        gt=0,
        description="P(a > b) = sigmoid(<R v_a, v_b> / tau). Left out of a pref config: 0.15 "
        "for kind gpm (its held-out subsets' calibration, docs/pref.md), 0.1 for bayes_gpm.",
    )
    prompt_scaling: bool = Field(
        False, description="Scale block j by lambda_j = k * softmax(W h_prompt)_j."
    )
    reward_head: bool = Field(
        False,
        description="Add a Bradley-Terry reward beside the skew-symmetric score: "
        "logit = r_a - r_b + <R v_a, v_b> / tau (the reward carries the transitive part, "
        "the embedding the cyclic part; the reward starts at zero). Off: the plain GPM.",
    )

    @field_validator("dim")
    @classmethod
    def _even(cls, dim: int) -> int:
        if dim % 2:
            raise ValueError(f"must be even (k blocks of 2), got {dim}")
        return dim


class BayesConfig(StrictModel):
    """The variational GPM: Gaussian posterior over the ambient embedding."""

    prior_var: float = Field(0.1, gt=0, description="Variance of the N(0, prior_var) prior.")
    regularize_mean: bool = Field(
        False, description="Also penalise raw_mu (else the KL regularises the variance only)."
    )
    max_kl_weight: float = Field(0.05, ge=0, description="KL weight after the warm-up.")
    kl_warmup_steps: int = Field(
        500, le=MAX_COUNT, ge=0, description="Steps of linear KL warm-up from 0."
    )
    n_samples: int = Field(
        16, le=MAX_SAMPLES, ge=1, description="Monte Carlo draws per pair at prediction."
    )
    init_std_ratio: float = Field(
        0.1, gt=0, description="Starting posterior std as a fraction of the expected |raw_mu|."
    )


class PrefConfig(StrictModel):
    """``termwise pref`` settings: backbone, model kind, data, training."""

    @model_validator(mode="before")
    @classmethod
    def _renamed_head(cls, data: Any) -> Any:
        """``head`` was the key's name before ``kind``: still read, with a warning."""
        if isinstance(data, dict) and "head" in data:
            if "kind" in data:
                raise ValueError("give 'kind' only ('head' is its old name)")
            warnings.warn(
                "pref config: 'head' is deprecated, rename it to 'kind'",
                TermwiseDeprecationWarning,
                stacklevel=2,
            )
            data = {("kind" if k == "head" else k): v for k, v in data.items()}
        return data

    @model_validator(mode="before")
    @classmethod
    def _defaults_by_kind(cls, data: Any) -> Any:
        """The embedding size, temperature and learning rate a config leaves out depend on
        the kind (``GPM_DIM``, ``GPM_TAU``, ``LEARNING_RATE``)."""
        if not isinstance(data, dict):
            return data
        kind = data.get("kind", data.get("head", "bt"))
        gpm = data.get("gpm", {})
        if kind in GPM_DIM and isinstance(gpm, dict):
            for key, default in (("dim", GPM_DIM[kind]), ("tau", GPM_TAU[kind])):
                gpm = gpm if key in gpm else {**gpm, key: default}
            data = {**data, "gpm": gpm}
        if kind in LEARNING_RATE and "learning_rate" not in data:
            data = {**data, "learning_rate": LEARNING_RATE[kind]}
        return data

    kind: PreferenceKind = Field(
        "bt", description="The model: bt (scalar reward), gpm, or bayes_gpm."
    )
    train_path: ExistingFile = Field(..., description="Training pairs (JSONL).")
    dev_path: ExistingFile | None = Field(
        None, description="Pairs evaluated at the end of training (null: none)."
    )
    backbone: BackboneConfig = Field(default_factory=BackboneConfig, description="Backbone.")
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA or full.")
    bt: BtConfig = Field(default_factory=BtConfig, description="bt settings.")
    gpm: GpmConfig = Field(default_factory=GpmConfig, description="gpm/bayes_gpm embedding.")
    bayes: BayesConfig = Field(default_factory=BayesConfig, description="bayes_gpm only.")
    calibrate: bool = Field(
        True,
        description="After training, fit a temperature and power on dev_path and save them "
        "with the model (probabilities then match observed accuracy; the ranking is unchanged).",
    )
    use_margin: bool = Field(
        True, description="Subtract a record's 'margin' from its logit in the loss."
    )
    label_smoothing: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="Bradley-Terry loss against labels flipped with this probability: an "
        "easy pair's logit stops growing at log((1 - eps) / eps) (0: plain loss).",
    )
    learning_rate: float = Field(
        2e-4,
        gt=0,
        description="AdamW learning rate. Left out: 4e-4 for kind gpm (its unit-sphere "
        "embedding was 1-2 points less accurate than bt at 2e-4, docs/pref.md), 2e-4 otherwise.",
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_pairs: int | None = Field(
        None, le=MAX_COUNT, gt=0, description="Read at most this many training pairs (null: all)."
    )
    on_bad_record: Literal["error", "skip"] = Field(
        "error", description="A bad record stops the run (error) or is skipped and counted."
    )
    trainer: TrainerConfig = Field(
        default_factory=lambda: TrainerConfig(
            max_steps=500, batch_size=8, health_every=25, checkpoint_every=100
        ),
        description="Shared training-loop settings (batch_size counts pairs).",
    )

    @model_validator(mode="after")
    def _reward_head_needs_an_embedding(self) -> PrefConfig:
        if self.kind == "bt" and self.gpm.reward_head:
            raise ValueError(
                "gpm.reward_head: applies to kind gpm or bayes_gpm (a bt model is a reward)"
            )
        return self
