"""Config of next-vector prediction (``termwise lvm``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from termwise.config import (
    MAX_BATCH,
    MAX_COUNT,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_WIDTH,
    ExistingFile,
    StrictModel,
    check_heads_divide,
)
from termwise.trainer.config import TrainerConfig


class LvmDataConfig(StrictModel):
    """Documents of ordered sentences, embedded once, cut into windows."""

    sequences: list[ExistingFile] = Field(
        ...,
        min_length=1,
        description="JSONL documents {sentences: [...]}, or corpus passages {id, text} "
        "rebuilt into documents in id order (id <document>-s<first>-<last> or "
        "-u<first>-<last>; a gap splits a document).",
    )
    ood: list[ExistingFile] = Field(
        default_factory=list,
        description="Out-of-distribution documents, in either form sequences takes.",
    )
    backbone: Path | None = Field(
        None, description="Sentence-embedding model (null: all-MiniLM-L6-v2, 384-d)."
    )
    context: int = Field(5, le=MAX_LENGTH, ge=1, description="Sentence vectors the model reads.")
    offset: int = Field(
        1, le=MAX_LENGTH, ge=1, description="The target is the sentence this far ahead."
    )
    val_fraction: float = Field(0.2, gt=0, lt=0.5, description="Documents held out for val.")
    train_fraction: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of the training documents trained on (a fixed random subset; "
        "below 1 for a learning curve). Val and OOD are unchanged.",
    )
    max_ood_documents: int = Field(
        30, le=MAX_COUNT, gt=0, description="OOD documents used at most."
    )
    cache_dir: Path = Field(
        Path("runs/lvm-data"), description="Where build-data writes the embeddings."
    )
    batch_size: int = Field(128, le=MAX_BATCH, gt=0, description="Sentences per embedding batch.")


class LvmModelConfig(StrictModel):
    """A small transformer over the context vectors."""

    width: int = Field(256, le=MAX_WIDTH, gt=0, description="Transformer width.")
    layers: int = Field(2, le=MAX_DEPTH, gt=0, description="Transformer layers.")
    heads: int = Field(4, le=MAX_DEPTH, gt=0, description="Attention heads (must divide width).")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout in the transformer.")
    residual: bool = Field(
        False,
        description="Predict a correction to the last context vector (the prediction starts "
        "as copy-last) instead of the next vector itself. Off: on the prose mix it gains MRR "
        "and R@5 but loses R@1 and gate E, and still trails copy-last (docs/lvm.md).",
    )

    @model_validator(mode="after")
    def _heads_divide_width(self) -> LvmModelConfig:
        check_heads_divide(self.width, self.heads, "width")
        return self


class RampByEpoch(StrictModel):
    """A value that steps up by epoch: ``values[i]`` from ``epochs[i]`` on."""

    epochs: list[int] = Field(..., min_length=1, description="First epoch of each value.")
    values: list[float] = Field(..., min_length=1, description="The values.")

    @model_validator(mode="after")
    def _aligned(self) -> RampByEpoch:
        if len(self.epochs) != len(self.values) or self.epochs[0] != 0:
            raise ValueError("epochs and values must have the same length, epochs starting at 0")
        if any(b <= a for a, b in zip(self.epochs, self.epochs[1:], strict=False)):
            raise ValueError("epochs must increase")
        return self


class ContrastiveConfig(StrictModel):
    """InfoNCE (:func:`termwise.terms.next_vector_info_nce`): the prediction must pick its
    target out of the batch's targets and its own context sentences."""

    weight: float = Field(
        1.0, ge=0, description="Weight of the InfoNCE term beside the regression (0: off)."
    )
    temperature: float = Field(0.1, gt=0, description="Softmax temperature over cosines.")
    hard_negatives: bool = Field(
        False,
        description="Add the window's context sentences as negatives (off by default: on "
        "wikitext they lowered val MRR, docs/lvm.md).",
    )


class LvmObjectiveConfig(StrictModel):
    """MSE (or cosine), an optional auto-scaled directional margin and an optional
    contrastive term."""

    regression: Literal["mse", "cosine"] = Field("mse", description="The data term.")
    directional: bool = Field(
        False,
        description="Add the directional margin term (off by default: on wikitext it won its "
        "margin by moving away from the context, docs/lvm.md).",
    )
    gamma: float = Field(8.0, gt=0, description="Sharpness of the soft hinge.")
    target_frac: RampByEpoch = Field(
        default_factory=lambda: RampByEpoch(epochs=[0, 2, 5], values=[0.10, 0.20, 0.25]),
        description="The directional term's weighted value as a fraction of the data term.",
    )
    margin: RampByEpoch = Field(
        default_factory=lambda: RampByEpoch(epochs=[0, 2, 5], values=[0.02, 0.04, 0.05]),
        description="Required cos(pred, next) - cos(pred, prev).",
    )
    clamp: tuple[float, float] = Field(
        (1e-4, 5e-2), description="Bounds [lo, hi] of the auto-scaled weight (lambda_eff)."
    )
    contrastive: ContrastiveConfig = Field(
        default_factory=ContrastiveConfig, description="The InfoNCE term (weight 0: off)."
    )

    @field_validator("clamp")
    @classmethod
    def _clamp_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] < value[1]:
            raise ValueError(f"need 0 <= lo < hi, got [{value[0]}, {value[1]}]")
        return value


class GateThresholds(StrictModel):
    """Pass marks of the five gates."""

    margin: float = Field(
        0.05,
        description="A: margin(+1) = cos(pred, next) - cos(pred, prev) >=, with the offset "
        "sweep peaking at the target.",
    )
    r_at_5: float = Field(
        0.3,
        ge=0,
        le=1,
        description="B: R@5 among all val targets >=, with R@1, R@5 and MRR above every "
        "trivial predictor's.",
    )
    ablation_drop: float = Field(
        0.005, description="C: shuffled or zeroed context must lower cos(pred, next) by >=."
    )
    rollout_first: float = Field(
        0.3,
        description="D: mean cosine at rollout step 1 >=, with the mean over the steps above "
        "every trivial predictor's.",
    )
    ood_gap: float = Field(0.05, ge=0, description="E: |val - OOD| of cos(pred, next) <=.")


class LvmConfig(StrictModel):
    """``termwise lvm`` settings."""

    data: LvmDataConfig = Field(..., description="Documents and windows.")
    model: LvmModelConfig = Field(default_factory=LvmModelConfig, description="The model.")
    objective: LvmObjectiveConfig = Field(
        default_factory=LvmObjectiveConfig, description="The objective."
    )
    gates: GateThresholds = Field(default_factory=GateThresholds, description="Pass marks.")
    epochs: int = Field(6, le=MAX_COUNT, gt=0, description="Passes over the training windows.")
    learning_rate: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    eval_windows: int = Field(
        2000, le=MAX_COUNT, gt=0, description="Val windows in the per-epoch gates."
    )
    best_metric: str = Field(
        "mrr",
        description="Chooses the best epoch by this val metric (mrr, r_at_5, margin, ...), "
        "subject to R@5 not dropping below the best R@5 so far by more than 0.02.",
    )
    trainer: TrainerConfig = Field(
        default_factory=lambda: TrainerConfig(
            max_steps=1, batch_size=128, health_every=20, log_every=10, checkpoint_every=0
        ),
        description="Shared training-loop settings (max_steps and eval_every are set from "
        "epochs and the epoch length).",
    )


DOCUMENT_SETS = ("wikitext", "prose-mix")
PROSE_MIX = ("brown_*.jsonl", "reviews.jsonl", "web_c4.jsonl")


def default_config(data_dir: Path, documents: str = "wikitext") -> LvmConfig:
    """The default run over ``data_dir`` (the bundled sample or ``../shared/data``).
    ``wikitext``: the sequences documents, Brown news and learned passages as the OOD set;
    ``prose-mix``: documents rebuilt from the Brown, movie-review and C4 passages of
    ``corpora/``, the WikiText sequences as the OOD set."""
    from termwise.errors import TermwiseUserError

    sequences = sorted((data_dir / "sequences").glob("*.jsonl"))
    if documents == "prose-mix":
        mix = sorted(p for pattern in PROSE_MIX for p in (data_dir / "corpora").glob(pattern))
        if not mix:
            raise TermwiseUserError(
                f"no corpora/{{{','.join(PROSE_MIX)}}} here", path=data_dir, field="--documents"
            )
        return LvmConfig.model_validate({"data": {"sequences": mix, "ood": sequences}})
    if documents != "wikitext":
        raise TermwiseUserError(
            f"{documents!r}: expected one of {', '.join(DOCUMENT_SETS)}", field="--documents"
        )
    ood = [data_dir / "corpora" / f"{n}.jsonl" for n in ("brown_news", "brown_learned")]
    if not sequences:
        raise TermwiseUserError("no sequences/*.jsonl here", path=data_dir)
    return LvmConfig.model_validate(
        {"data": {"sequences": sequences, "ood": [p for p in ood if p.is_file()]}}
    )
