"""A multi-head reward model: one backbone pass, N scalar heads (RMSNorm + one Linear).

``backbone -> pooled hidden -> RMSNorm -> Linear(hidden, n_heads) -> soft_cap -> scores``.
Encoders pool by the attention-masked mean, causal LMs by the last non-pad token. The
backbone is any local Hugging Face path; LoRA goes through PEFT. The norm and the head are
always trained and always saved with the adapter, so a reloaded model scores identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import orjson
import torch
from safetensors.torch import load_model, save_model
from torch import Tensor, nn

from termwise.errors import TermwiseUserError
from termwise.terms import soft_cap

Pooling = Literal["mean", "last"]
FORMAT = "termwise-reward/1"
MANIFEST = "termwise_reward.json"

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


def save_reward_model(
    model: MultiHeadRewardModel, tokenizer: Any, directory: Path, manifest: dict[str, Any]
) -> None:
    """Directory layout: ``termwise_reward.json`` (head names, pooling, cap, backbone
    reference, prompt settings), ``heads.safetensors``, ``tokenizer/``, and either
    ``adapter/`` (PEFT LoRA weights) or ``backbone/`` (full fine-tuned weights)."""
    from peft import PeftModel

    directory.mkdir(parents=True, exist_ok=True)
    backbone: Any = model.backbone  # a PeftModel or a transformers PreTrainedModel
    lora = isinstance(backbone, PeftModel)
    if lora:
        backbone.save_pretrained(str(directory / "adapter"))
    else:
        backbone.save_pretrained(str(directory / "backbone"), safe_serialization=True)
    save_model(model.heads, str(directory / "heads.safetensors"))
    tokenizer.save_pretrained(str(directory / "tokenizer"))
    payload = {
        **manifest,
        "format": FORMAT,
        "head_names": model.head_names,
        "pooling": model.pooling,
        "logit_cap": model.logit_cap,
        "lora": lora,
    }
    (directory / MANIFEST).write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))


def load_reward_model(directory: Path) -> tuple[MultiHeadRewardModel, Any, dict[str, Any]]:
    """Inverse of :func:`save_reward_model`: the model (eval mode), its tokenizer and the
    manifest. A LoRA model also needs its base backbone at the recorded local path."""
    from transformers import AutoTokenizer

    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise TermwiseUserError(f"not a termwise reward model (no {MANIFEST})", path=directory)
    manifest: dict[str, Any] = orjson.loads(manifest_path.read_bytes())
    if manifest.get("format") != FORMAT:
        raise TermwiseUserError(
            f"unsupported format {manifest.get('format')!r}", path=manifest_path, field="format"
        )
    if manifest["lora"]:
        from peft import PeftModel

        base, config = load_backbone(manifest["backbone_path"])
        backbone: nn.Module = PeftModel.from_pretrained(base, str(directory / "adapter"))
    else:
        backbone, config = load_backbone(directory / "backbone")
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
