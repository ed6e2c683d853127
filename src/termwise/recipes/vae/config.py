"""Config of the variational bottleneck (``termwise vae``)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeFloat, field_validator, model_validator

from termwise.config import (
    MAX_BATCH,
    MAX_COUNT,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_SAMPLES,
    MAX_WIDTH,
    ExistingFile,
    StrictModel,
    check_heads_divide,
)
from termwise.errors import TermwiseConfigWarning
from termwise.trainer.config import TrainerConfig

Task = Literal["reconstruct", "classify"]
Part = Literal["embedding", "encoder", "decoder"]
CRITERION = re.compile(r"^\s*(<=|>=|<|>|==)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


class VaeDataConfig(StrictModel):
    """Where the sentences come from and how they become token ids."""

    sequences: list[ExistingFile] = Field(
        default_factory=list,
        description="JSONL documents {title, sentences: [...]} (../shared/data/sequences).",
    )
    corpora: list[ExistingFile] = Field(
        default_factory=list,
        description="JSONL texts (a text field), split into sentences; for task classify each "
        "row is one example and its file name is the label.",
    )
    max_tokens: int = Field(
        24, le=MAX_LENGTH, ge=4, description="Tokens per example; longer ones are cut."
    )
    min_tokens: int = Field(
        3, le=MAX_LENGTH, ge=1, description="Shorter sentences are left out (counted)."
    )
    max_vocab: int = Field(
        5000,
        le=MAX_COUNT,
        ge=10,
        description="Most frequent training words kept (the softmax's size).",
    )
    min_count: int = Field(2, le=MAX_COUNT, ge=1, description="Rarer training words become <unk>.")
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="Documents held out for val.")
    test_fraction: float = Field(0.1, gt=0, lt=0.5, description="Documents held out for test.")
    max_examples: int | None = Field(
        None, le=MAX_COUNT, gt=0, description="Read at most this many."
    )
    cache_dir: Path = Field(
        Path("runs/vae-data"),
        description="Where build-data writes the vocabulary, splits and teacher targets.",
    )

    @model_validator(mode="after")
    def _has_sources(self) -> VaeDataConfig:
        if not self.sequences and not self.corpora:
            raise ValueError("name at least one file in sequences or corpora")
        return self


class VaeModelConfig(StrictModel):
    """Encoder -> latent tokens -> decoder (or classifier)."""

    embed_dim: int = Field(128, le=MAX_WIDTH, gt=0, description="Token embedding width.")
    encoder: Literal["gru", "transformer"] = Field("gru", description="Encoder kind.")
    encoder_hidden: int = Field(256, le=MAX_WIDTH, gt=0, description="Encoder width.")
    encoder_layers: int = Field(1, le=MAX_DEPTH, gt=0, description="Encoder layers.")
    heads: int = Field(4, le=MAX_DEPTH, gt=0, description="Attention heads (transformer encoder).")
    num_latent_tokens: int = Field(1, le=MAX_DEPTH, gt=0, description="Latent tokens per example.")
    latent_dim: int = Field(32, le=MAX_WIDTH, gt=0, description="Dimensions per latent token.")
    decoder: Literal["gru", "lstm"] = Field("gru", description="Autoregressive decoder kind.")
    decoder_hidden: int = Field(256, le=MAX_WIDTH, gt=0, description="Decoder width.")
    word_dropout: float = Field(
        0.0, ge=0, lt=1, description="Share of decoder inputs replaced by <unk> in training."
    )
    use_latent: bool = Field(
        True, description="false: a plain autoregressive language model (no z, no KL)."
    )

    @model_validator(mode="after")
    def _heads_divide_width(self) -> VaeModelConfig:
        if self.encoder == "transformer":
            check_heads_divide(self.encoder_hidden, self.heads, "encoder_hidden")
        return self


class KlConfig(StrictModel):
    """The KL term: free bits and where they apply."""

    free_bits: NonNegativeFloat | Literal["auto"] = Field(
        "auto",
        description="Nats (per dim for mean_dims/per_dim, per latent token for sum_dims) of KL "
        "that cost nothing; KL under it gets NO gradient. auto: re-solved every auto_refresh "
        "steps on the KL of the last auto_every steps so that penalty_reduction sits at "
        "auto_target.",
    )
    reduce: Literal["mean_dims", "per_dim", "sum_dims"] = Field(
        "mean_dims", description="Where free bits apply (see termwise.terms.free_bits_kl)."
    )
    auto_target: float = Field(0.3, gt=0, lt=1, description="penalty_reduction auto aims at.")
    auto_every: int = Field(
        20, le=MAX_COUNT, gt=0, description="Steps of KL each auto estimate is solved on."
    )
    auto_refresh: int | None = Field(
        None,
        gt=0,
        le=MAX_COUNT,
        description="Steps between auto estimates (null: auto_every // 4, so a threshold "
        "solved while an annealed KL weight was low is replaced within a few steps; "
        "auto_every re-solves once per window, as before).",
    )
    auto_max: float = Field(1.0, gt=0, description="Upper bound of the auto threshold.")

    @model_validator(mode="after")
    def _refresh_within_window(self) -> KlConfig:
        if self.auto_refresh is not None and self.auto_refresh > self.auto_every:
            raise ValueError(
                f"auto_refresh ({self.auto_refresh}) must be <= auto_every ({self.auto_every})"
            )
        return self


class RampConfig(StrictModel):
    """A weight over one stage: from ``start`` to ``end`` as the stage progresses."""

    start: float = Field(1.0, ge=0, description="Weight at the stage's first step.")
    end: float = Field(1.0, ge=0, description="Weight at (and, for linear, after) its end.")
    shape: Literal["linear", "cyclical"] = Field(
        "linear", description="linear, or cyclical (Fu et al. 2019) with `cycles` rises."
    )
    cycles: int = Field(
        4, le=MAX_COUNT, gt=0, description="Rises of a cyclical ramp within the stage."
    )


class StageConfig(StrictModel):
    """One stage of the curriculum."""

    name: str = Field(..., description="Shown in the logs.")
    epochs: int = Field(..., le=MAX_COUNT, gt=0, description="Length of the stage in epochs.")
    kl_weight: RampConfig = Field(default_factory=RampConfig, description="KL weight ramp.")
    teacher_weight: float = Field(10.0, ge=0, description="Weight of the teacher term.")
    freeze: list[Part] = Field(
        default_factory=list, description="Parts that do not train in this stage."
    )

    @model_validator(mode="after")
    def _frozen_decoder(self) -> StageConfig:
        if "decoder" in self.freeze:
            warnings.warn(
                f"stage {self.name!r} freezes the decoder: this rarely helps (a frozen decoder "
                "was too restrictive in the seed project: the encoder must then fit a decoder "
                "that cannot adapt, and reconstruction stalls); it runs as configured",
                TermwiseConfigWarning,
                stacklevel=2,
            )
        return self


def default_stages() -> list[StageConfig]:
    """Anneal the KL weight from 0 over the first epoch, then train at weight 1."""
    return [
        StageConfig(name="anneal", epochs=1, kl_weight=RampConfig(start=0.0, end=1.0)),
        StageConfig(name="main", epochs=3),
    ]


class TeacherConfig(StrictModel):
    """A frozen teacher the bottleneck is distilled towards."""

    enabled: bool = Field(True, description="Add the teacher term.")
    backbone: Path | None = Field(
        None,
        description="Sentence-embedding model for task reconstruct (null: all-MiniLM-L6-v2); "
        "task classify uses the soft labels of TF-IDF + logistic regression instead.",
    )
    batch_size: int = Field(
        128, le=MAX_BATCH, gt=0, description="Sentences per teacher batch (build-data)."
    )


class EarlyStoppingConfig(StrictModel):
    """Stop when the named metric stops improving; the best model is kept."""

    metric: str | None = Field(
        None,
        description="Evaluated every epoch (null: val_nll for reconstruct, val_loss for "
        "classify); never the total loss, whose scale moves with the KL weight.",
    )
    mode: Literal["min", "max"] = Field("min", description="Lower or higher is better.")
    patience: int = Field(
        3, le=MAX_COUNT, gt=0, description="Epochs without improvement before stopping."
    )


class VaeConfig(StrictModel):
    """``termwise vae`` settings."""

    task: Task = Field(
        "reconstruct",
        description="reconstruct: a sentence VAE; classify: text -> latent -> corpus label.",
    )
    data: VaeDataConfig = Field(..., description="The sentences.")
    model: VaeModelConfig = Field(default_factory=VaeModelConfig, description="The model.")
    kl: KlConfig = Field(default_factory=KlConfig, description="The KL term.")
    teacher: TeacherConfig = Field(default_factory=TeacherConfig, description="The teacher.")
    stages: list[StageConfig] = Field(
        default_factory=default_stages,
        min_length=1,
        description="The curriculum; the run lasts the sum of the stages' epochs "
        "(trainer.max_steps is set from it).",
    )
    learning_rate: float = Field(2e-3, gt=0, description="Adam learning rate.")
    early_stopping: EarlyStoppingConfig = Field(
        default_factory=EarlyStoppingConfig, description="Early stopping."
    )
    success: dict[str, str] = Field(
        default_factory=dict,
        description="Criteria checked at the end on the best model's val metrics, e.g. "
        "{val_nll: '< 4.8', val_active_units: '>= 8'}.",
    )
    eval_examples: int = Field(
        1000, le=MAX_COUNT, gt=0, description="Examples per split for the per-epoch diagnostics."
    )
    iw_samples: int = Field(
        10,
        le=MAX_SAMPLES,
        gt=0,
        description="Importance samples of the NLL bound (val, at the end).",
    )
    trainer: TrainerConfig = Field(
        default_factory=lambda: TrainerConfig(
            max_steps=1, batch_size=64, health_every=20, log_every=10, checkpoint_every=0
        ),
        description="Shared training-loop settings (max_steps and eval_every are set from "
        "the stages and the epoch length).",
    )

    @property
    def stopping_metric(self) -> str:
        default = "val_nll" if self.task == "reconstruct" else "val_loss"
        return self.early_stopping.metric or default

    @field_validator("success")
    @classmethod
    def _criteria(cls, criteria: dict[str, str]) -> dict[str, str]:
        for name, rule in criteria.items():
            if not CRITERION.match(rule):
                raise ValueError(f"{name}: {rule!r} is not '<op> <number>' (ops < <= > >= ==)")
        return criteria


def default_config(data_dir: Path, task: str = "reconstruct") -> VaeConfig:
    """The default run over ``data_dir`` (the bundled sample or ``../shared/data``):
    wikitext documents for reconstruct, the corpora for classify."""
    from termwise.errors import TermwiseUserError

    if task not in ("reconstruct", "classify"):
        raise TermwiseUserError(f"--task must be reconstruct or classify, got {task!r}")
    if task == "reconstruct":
        files = sorted((data_dir / "sequences").glob("*.jsonl"))
        data: dict[str, object] = {"sequences": files}
    else:
        names = ("brown_news", "brown_learned", "reviews", "glossary_foldoc", "dialogue_chat")
        files = [data_dir / "corpora" / f"{n}.jsonl" for n in names]
        data = {"corpora": files, "max_tokens": 64}
    missing = [str(f) for f in files if not f.is_file()] or ([] if files else [str(data_dir)])
    if missing:
        raise TermwiseUserError(f"no data: missing {', '.join(missing)}", path=data_dir)
    return VaeConfig.model_validate({"task": task, "data": data})
