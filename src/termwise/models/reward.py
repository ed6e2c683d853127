"""A multi-head reward model: one backbone pass, N scalar heads (RMSNorm + one Linear).

``backbone -> pooled hidden -> RMSNorm -> Linear(hidden, n_heads) -> soft_cap -> scores``.
Encoders pool by the attention-masked mean, causal LMs by the last non-pad token. The
backbone is any local Hugging Face path; LoRA goes through PEFT. The norm and the head are
always trained and always saved with the adapter, so a reloaded model scores identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors.torch import load_model, save_model
from torch import Tensor, nn

from termwise.models.backbone import (
    Pooling,
    apply_lora,
    default_lora_targets,
    default_pooling,
    load_backbone,
    pool,
    read_manifest,
    restore_backbone,
    save_backbone,
    write_manifest,
)
from termwise.terms import soft_cap

__all__ = [
    "MultiHeadRewardModel",
    "RewardHeads",
    "apply_lora",
    "default_lora_targets",
    "default_pooling",
    "load_backbone",
    "load_reward_model",
    "pool",
    "save_reward_model",
]
FORMAT = "termwise-reward/1"
MANIFEST = "termwise_reward.json"


class RewardHeads(nn.Module):
    """RMSNorm then one stacked Linear: every head reads the same normalised features."""

    def __init__(self, hidden_size: int, n_heads: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(hidden_size, eps=eps)
        self.linear = nn.Linear(hidden_size, n_heads)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.linear(self.norm(pooled.float()))


class MultiHeadRewardModel(nn.Module):
    """Scores ``[batch, n_heads]`` from one backbone forward pass."""

    def __init__(
        self,
        backbone: nn.Module,
        hidden_size: int,
        head_names: list[str],
        pooling: Pooling,
        logit_cap: float,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = RewardHeads(hidden_size, len(head_names))
        self.head_names = list(head_names)
        self.pooling: Pooling = pooling
        self.logit_cap = logit_cap

    def raw_scores(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        return self.heads(pool(out.last_hidden_state, attention_mask, self.pooling))

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return soft_cap(self.raw_scores(input_ids, attention_mask), self.logit_cap)


def save_reward_model(
    model: MultiHeadRewardModel, tokenizer: Any, directory: Path, manifest: dict[str, Any]
) -> None:
    """Directory layout: ``termwise_reward.json`` (head names, pooling, cap, backbone
    reference, prompt settings), ``heads.safetensors``, ``tokenizer/``, and either
    ``adapter/`` (PEFT LoRA weights) or ``backbone/`` (full fine-tuned weights)."""
    lora = save_backbone(model.backbone, tokenizer, directory)
    save_model(model.heads, str(directory / "heads.safetensors"))
    payload = {
        **manifest,
        "format": FORMAT,
        "head_names": model.head_names,
        "pooling": model.pooling,
        "logit_cap": model.logit_cap,
        "lora": lora,
    }
    write_manifest(directory / MANIFEST, payload)


def load_reward_model(directory: Path) -> tuple[MultiHeadRewardModel, Any, dict[str, Any]]:
    """Inverse of :func:`save_reward_model`: the model (eval mode), its tokenizer and the
    manifest. A LoRA model also needs its base backbone at the recorded local path."""
    from transformers import AutoTokenizer

    manifest = read_manifest(directory / MANIFEST, FORMAT, "reward model")
    backbone, config = restore_backbone(directory, manifest["lora"], manifest["backbone_path"])
    model = MultiHeadRewardModel(
        backbone,
        config.hidden_size,
        manifest["head_names"],
        manifest["pooling"],
        manifest["logit_cap"],
    )
    load_model(model.heads, str(directory / "heads.safetensors"))
    tokenizer = AutoTokenizer.from_pretrained(str(directory / "tokenizer"), local_files_only=True)
    return model.eval(), tokenizer, manifest
