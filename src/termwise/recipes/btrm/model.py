"""A multi-head reward model: one backbone pass, N scalar heads (RMSNorm + one Linear).

``backbone -> pooled hidden -> RMSNorm -> Linear(hidden, n_heads) [+ lexical] -> soft_cap``.
The optional lexical branch (:mod:`termwise.models.lexical`) adds a linear model on the
text's hashed word n-grams to every head's score before the cap; it is part of the heads'
module, so it is trained, checkpointed and saved with them. A tf-idf logistic regression
on the same n-grams (:mod:`termwise.models.tfidf_logistic`), fitted after training, adds
its logits the same way and is saved with the heads too.
Encoders pool by the attention-masked mean, causal LMs by the last non-pad token. The
backbone is any local Hugging Face path; LoRA goes through PEFT. The norm and the head are
always trained and always saved with the adapter, so a reloaded model scores identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from termwise.models.backbone import LexicalConfig, Pooling, pool
from termwise.models.lexical import LexicalBranch, lexical_branch, pack_bags
from termwise.models.saved import (
    SavedManifest,
    load_head_weights,
    read_manifest,
    restore_backbone,
    write_model_dir,
)
from termwise.models.tfidf_logistic import TfidfLogistic
from termwise.terms import soft_cap

FORMAT = "termwise-reward/1"
MANIFEST = "termwise_reward.json"
WEIGHTS = "heads.safetensors"


class RewardHeads(nn.Module):
    """RMSNorm then one stacked Linear: every head reads the same normalised features;
    with a lexical branch, its per-head scores are added."""

    def __init__(
        self,
        hidden_size: int,
        n_heads: int,
        eps: float = 1e-6,
        lexical: LexicalConfig | None = None,
    ) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(hidden_size, eps=eps)
        self.linear = nn.Linear(hidden_size, n_heads)
        self.lexical: LexicalBranch | None = lexical_branch(n_heads, lexical)
        # Fitted after training (recipes/btrm/logistic_fit.py); None until then.
        self.logistic: TfidfLogistic | None = None

    def forward(
        self,
        pooled: Tensor,
        bag_ids: Tensor | None = None,
        bag_offsets: Tensor | None = None,
        with_logistic: bool = True,
    ) -> Tensor:
        """The heads' scores; ``with_logistic=False`` leaves the fitted regression out."""
        scores = self.linear(self.norm(pooled.float()))
        if self.lexical is None:
            return scores
        if bag_ids is None or bag_offsets is None:
            raise ValueError("this model has a lexical branch: pass the texts' n-gram bags")
        scores = scores + self.lexical(bag_ids, bag_offsets)
        if self.logistic is not None and with_logistic:
            scores = scores + self.logistic(bag_ids, bag_offsets)
        return scores


class MultiHeadRewardModel(nn.Module):
    """Scores ``[batch, n_heads]`` from one backbone forward pass."""

    def __init__(
        self,
        backbone: nn.Module,
        hidden_size: int,
        head_names: list[str],
        pooling: Pooling,
        logit_cap: float,
        lexical: LexicalConfig | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = RewardHeads(hidden_size, len(head_names), lexical=lexical)
        self.head_names = list(head_names)
        self.pooling: Pooling = pooling
        self.logit_cap = logit_cap
        self.lexical_config = lexical if lexical is not None and lexical.enabled else None
        # Per head (scale, offset) applied to scored texts, set after training from unseen
        # documents (recipes/btrm/level.py); None: the raw capped scores.
        self.level: Tensor | None = None

    def bags(self, texts: list[str]) -> list[list[int]] | None:
        """The lexical branch's n-gram bags of ``texts`` (None without a branch)."""
        return None if self.heads.lexical is None else self.heads.lexical.features(texts)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        bag_ids: Tensor | None = None,
        bag_offsets: Tensor | None = None,
        jointly_trained: bool = False,
    ) -> Tensor:
        """Capped scores ``[batch, heads]``; ``jointly_trained``: the part trained with the
        backbone alone (no fitted regression, no cap), to which the regression is added."""
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        pooled = pool(out.last_hidden_state, attention_mask, self.pooling)
        scores = self.heads(pooled, bag_ids, bag_offsets, with_logistic=not jointly_trained)
        return scores if jointly_trained else soft_cap(scores, self.logit_cap)

    def score_batch(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        bags: list[list[int]] | None,
        jointly_trained: bool = False,
    ) -> Tensor:
        """Scores of one padded batch; ``bags`` (the rows' n-gram bags) when the model has
        a lexical branch, moved to the model's device. ``jointly_trained``: see
        :meth:`forward` (and no score level)."""
        if bags is None:
            scores = self(input_ids, attention_mask, jointly_trained=jointly_trained)
        else:
            ids, offsets = pack_bags(bags)
            device = input_ids.device
            scores = self(
                input_ids, attention_mask, ids.to(device), offsets.to(device), jointly_trained
            )
        if self.level is None or jointly_trained:
            return scores
        level = self.level.to(scores.device)
        return scores * level[0] + level[1]


class RewardManifest(SavedManifest):
    """``termwise_reward.json``: what the reward model needs to score."""

    head_names: list[str] = Field(..., min_length=1, description="One score per head.")
    logit_cap: float = Field(..., ge=0, description="Soft tanh cap; 0: none.")
    meta_prompt: str = Field(..., description="Wraps every text before scoring.")
    descriptions: dict[str, str] = Field(default_factory=dict, description="Per head.")
    lexical: LexicalConfig | None = Field(
        None, description="The lexical branch's n-gram settings (null: no branch)."
    )
    tfidf_logistic: bool = Field(
        False, description="The heads' weights hold a fitted tf-idf logistic regression."
    )
    level: list[list[float]] | None = Field(
        None,
        description="Per head [scale, offset] applied to scores (median positive of unseen "
        "documents -> 1, median negative -> -1); null: raw scores.",
    )


def save_reward_model(
    model: MultiHeadRewardModel, tokenizer: Any, directory: Path, manifest: dict[str, Any]
) -> None:
    """Directory layout: ``termwise_reward.json`` (head names, pooling, cap, backbone
    reference, prompt settings), ``heads.safetensors``, ``tokenizer/``, and either
    ``adapter/`` (PEFT LoRA weights) or ``backbone/`` (full fine-tuned weights)."""
    from peft import PeftModel

    payload = RewardManifest.model_validate(
        {
            **manifest,
            "format": FORMAT,
            "head_names": model.head_names,
            "pooling": model.pooling,
            "logit_cap": model.logit_cap,
            "lexical": model.lexical_config,
            "tfidf_logistic": model.heads.logistic is not None,
            "level": None if model.level is None else model.level.T.tolist(),
            "lora": isinstance(model.backbone, PeftModel),
        }
    )
    write_model_dir(directory, model.backbone, tokenizer, model.heads, WEIGHTS, MANIFEST, payload)


def load_reward_model(directory: Path) -> tuple[MultiHeadRewardModel, Any, RewardManifest]:
    """Inverse of :func:`save_reward_model`: the model (eval mode), its tokenizer and the
    manifest. A LoRA model also needs its base backbone at the recorded local path."""
    manifest = read_manifest(directory, MANIFEST, RewardManifest, FORMAT, "reward model")
    backbone, config, tokenizer = restore_backbone(directory, manifest)
    model = MultiHeadRewardModel(
        backbone,
        config.hidden_size,
        manifest.head_names,
        manifest.pooling,
        manifest.logit_cap,
        manifest.lexical,
    )
    if manifest.tfidf_logistic and manifest.lexical is not None:
        model.heads.logistic = TfidfLogistic(manifest.lexical.buckets, len(manifest.head_names))
    load_head_weights(model.heads, directory / WEIGHTS)
    if manifest.level is not None:
        model.level = torch.tensor(manifest.level, dtype=torch.float32).T
    return model.eval(), tokenizer, manifest
