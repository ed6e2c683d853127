"""Config of the multi-head Bradley-Terry reward model (``termwise btrm``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from termwise.config import MAX_COUNT, ExistingFile, StrictModel
from termwise.errors import TermwiseUserError
from termwise.models.backbone import BackboneConfig, LexicalConfig, LoraConfig
from termwise.trainer.config import TrainerConfig

# About 14 minutes of training on 2 CPU cores with MiniLM at 128 tokens, batch 32
# (docs/btrm.md measures the default config at this length).
DEFAULT_STEPS = 500

NegativeTier = Literal["soft_neg", "semi_firm_neg", "furthest_neg"]


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


class TierWeightsConfig(StrictModel):
    """Pair weight of each negative tier in the Bradley-Terry term."""

    soft_neg: float = Field(
        2.0,
        ge=0,
        description="Pair weight of soft negatives: the closest to the positives, the pairs "
        "that teach the boundary.",
    )
    semi_firm_neg: float = Field(1.0, ge=0, description="Pair weight of semi-firm negatives.")
    furthest_neg: float = Field(
        1.0,
        ge=0,
        description="Pair weight of the furthest negatives. Not the least: a furthest source "
        "can hold texts close to a head (web pages that are news reports, for the news "
        "head), so they weigh as much as the other tiers (docs/btrm.md).",
    )


class HeldoutFold(StrictModel):
    """One of K document-level folds held out for evaluation."""

    index: int = Field(..., ge=0, description="Which fold is held out (0-based).")
    folds: int = Field(..., ge=2, le=MAX_COUNT, description="How many folds (K).")

    @model_validator(mode="after")
    def _index_in_range(self) -> HeldoutFold:
        if self.index >= self.folds:
            raise ValueError(f"index must be below folds ({self.folds}), got {self.index}")
        return self


class BtrmConfig(StrictModel):
    """``termwise btrm`` settings: backbone, heads and their data, training."""

    backbone: BackboneConfig = Field(
        # Tuned on MiniLM and 2 CPU cores: train on 128 tokens, score whole passages.
        default_factory=lambda: BackboneConfig(max_length=128, score_max_length=256),
        description="Backbone.",
    )
    lora: LoraConfig = Field(default_factory=LoraConfig, description="LoRA or full.")
    lexical: LexicalConfig = Field(
        default_factory=LexicalConfig,
        description="A lexical branch (hashed word n-grams, as fastText) summed into the heads.",
    )
    meta_prompt: str = Field(
        "Does the following text belong to the collection each head describes?",
        description="Wraps every sample, positive or negative, before a 'text:' line; the "
        "same prompt on every sample, so 'has a prompt' predicts nothing.",
    )
    heads: list[HeadConfig] = Field(..., min_length=1, description="The heads.")
    shared_negatives: list[SourceConfig] = Field(
        default_factory=list, description="Negatives of every head, each with its neg_tier."
    )
    tier_weights: TierWeightsConfig = Field(
        default_factory=TierWeightsConfig, description="Pair weights."
    )
    hard_negative_gamma: float = Field(
        0.0,
        ge=0,
        description="Weight each (positive, negative) pair by its current difficulty, "
        "(2 sigmoid(r_n - r_p))^gamma, as the focal loss does: pairs already far apart "
        "fade (0: every pair at its tier weight alone; docs/btrm.md compares 1).",
    )
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
    learning_rate: float = Field(5e-4, gt=0, description="AdamW learning rate.")
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
    heldout_fold: HeldoutFold | None = Field(
        None,
        description="Hold out fold `index` of `folds` instead of heldout_fraction: every "
        "source's documents in hash order dealt round the folds (rows by their hash), so "
        "K runs with index 0..K-1 hold out every document once (bench/btrm_vs_baselines.py "
        "--folds). null: heldout_fraction.",
    )
    level_fraction: float = Field(
        0.1,
        ge=0,
        lt=0.5,
        description="Share of the training documents kept out of training to set each "
        "head's score level: after training, an affine map per head sends the median "
        "positive of these unseen documents and of a sample of training rows (the tf-idf "
        "regression's part out of fold) to 1 and the median negative to -1, so one "
        "threshold means the same on every head (ranking unchanged). A head with fewer "
        "than 20 positive documents among the kept-out ones keeps its raw scores, and "
        "training says which. 0: no level.",
    )
    train_on_unlevelled: bool = Field(
        False,
        description="Train on the kept-out documents whose every positive head has fewer "
        "than 20 positive documents kept out: such a head keeps its raw scores, so they set "
        "no level and only take from its training. Documents that are no head's positive, "
        "and the positives of heads that are levelled, stay kept out. Off by default: on 5 "
        "document folds it trails fastText on fewer pairs but TF-IDF on more on one fold "
        "(docs/btrm.md).",
    )
    max_rows_per_source: int | None = Field(
        None,
        le=MAX_COUNT,
        gt=0,
        description="Read at most this many rows of each source (null: all).",
    )
    on_bad_record: Literal["error", "skip"] = Field(
        "error",
        description="A bad JSONL record stops the run (error) or is skipped and "
        "counted per source (skip).",
    )
    trainer: TrainerConfig = Field(
        default_factory=lambda: TrainerConfig(
            max_steps=DEFAULT_STEPS,
            batch_size=32,
            health_every=25,
            log_every=10,
            checkpoint_every=100,
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


# -- the default config over the bundled (or shared) corpora --------------------------------

FICTION = [
    "brown_adventure",
    "brown_mystery",
    "brown_romance",
    "brown_science_fiction",
    "brown_humor",
]
DIALOGUE = ["dialogue_chat", "dialogue_scripts", "dialogue_shakespeare"]
PROSE = [*FICTION, "brown_news", "brown_learned", "brown_government"]
SEMI_FIRM = ["reasoning_gsm8k", "reasoning_bbh"]
FURTHEST = ["encyclopedic_wikitext", "web_c4"]
REQUIRED = [*PROSE, *DIALOGUE, "glossary_foldoc", "reviews", *SEMI_FIRM, *FURTHEST]
# Corpora cut into chunks whose `source` names the document (a Brown text, a review, a chat
# session): their held-out split takes whole documents. The others are one document each
# (wikitext, Shakespeare), two (the scripts) or already independent rows.
BY_DOCUMENT = {*PROSE, "reviews", "dialogue_chat"}
HEADER = """termwise btrm config: a multi-head Bradley-Terry reward model.
Each head learns its own membership criterion from the same tokens: its positives against
a tiered hierarchy of negatives (pair weights in tier_weights). Check it with
  termwise btrm test-decoders -c THIS_FILE
  termwise btrm sample-inputs -c THIS_FILE
then train with
  termwise btrm train -c THIS_FILE -o runs/btrm"""


def _sources(directory: Path, names: list[str], **fields: str) -> list[dict[str, object]]:
    return [
        {
            "path": directory / f"{name}.jsonl",
            **fields,
            **({"group_field": "source"} if name in BY_DOCUMENT else {}),
        }
        for name in names
    ]


def default_config(directory: Path, max_steps: int = DEFAULT_STEPS) -> BtrmConfig:
    """Seven heads over the corpora in ``directory`` (the bundled sample or
    ``../shared/data/corpora``), every other setting at its default."""
    missing = [n for n in REQUIRED if not (directory / f"{n}.jsonl").is_file()]
    if missing:
        raise TermwiseUserError(
            f"missing corpora: {', '.join(n + '.jsonl' for n in missing)}", path=directory
        )
    d = directory
    soft = {"neg_tier": "soft_neg"}
    heads = [
        ("fiction", "Narrative fiction (the five Brown fiction genres).", FICTION),
        ("news", "Press reportage.", ["brown_news"]),
        ("learned", "Academic and scientific writing.", ["brown_learned"]),
        ("government", "Government documents and reports.", ["brown_government"]),
        ("reviews", "Film reviews.", ["reviews"]),
    ]
    head_dicts: list[dict[str, object]] = [
        {"name": name, "description": text, "positive_sources": _sources(d, names)}
        for name, text, names in heads
    ]
    head_dicts.append(
        {
            "name": "multiturn_dialogue",
            "description": "Raw multi-turn dialogue, several speakers in turn.",
            "positive_sources": _sources(d, DIALOGUE, tier_filter="flattened"),
            # Single lines pulled out of the same dialogues: dialogue, but not multi-turn.
            "negative_sources": _sources(
                d, DIALOGUE, tier_filter="single_quote", neg_tier="semi_firm_neg"
            )
            + _sources(d, [*PROSE, "glossary_foldoc"], **soft),
        }
    )
    head_dicts.append(
        {
            "name": "glossary",
            "description": "Glossary or dictionary entries.",
            "positive_sources": _sources(d, ["glossary_foldoc"]),
        }
    )
    shared = _sources(d, SEMI_FIRM, neg_tier="semi_firm_neg")
    shared += _sources(d, FURTHEST, neg_tier="furthest_neg")
    return BtrmConfig.model_validate(
        {
            "heads": head_dicts,
            "shared_negatives": shared,
            "trainer": {
                "max_steps": max_steps,
                "batch_size": 32,
                "health_every": 25,
                "log_every": 10,
                "checkpoint_every": 100,
            },
        }
    )
