"""Backbone set-up shared by the reward recipes (btrm, pref)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from termwise.models.backbone import (
    Pooling,
    apply_lora,
    default_pooling,
    disable_dropout,
    load_backbone,
)
from termwise.recipes.btrm_config import BackboneConfig, LoraSettings


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def adapted_backbone(
    path: Path, backbone: BackboneConfig, lora: LoraSettings
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
