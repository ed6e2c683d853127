"""A termwise reward model as a plain transformers model (written by ``termwise btrm export``
and ``termwise pref export``; loading it needs transformers and torch, not termwise).

    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(DIR, trust_remote_code=True)

``logits[:, i]`` is the score of label ``i`` (``config.id2label``): the backbone's hidden
states pooled (``config.termwise_pooling``: masked mean, or the last non-pad token), an
RMSNorm, one Linear, then per label ``cap * tanh(s / cap)`` (``config.termwise_cap``, 0:
none) and ``scale * s + offset`` (``config.termwise_level``, absent: none). Inputs are
encoded as ``config.termwise_input`` says.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class TermwiseRewardModel(PreTrainedModel):
    config_class = PretrainedConfig
    base_model_prefix = "backbone"

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__(config)
        self.backbone = AutoModel.from_config(config)
        self.norm = nn.RMSNorm(config.hidden_size, eps=1e-6)
        self.score = nn.Linear(config.hidden_size, int(config.num_labels or 1))
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs: object,
    ) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        hidden = hidden.last_hidden_state
        mask = attention_mask.to(hidden.dtype)
        if self.config.termwise_pooling == "mean":
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)
        else:
            positions = torch.arange(hidden.shape[1], device=hidden.device)
            last = (attention_mask.long() * positions).argmax(dim=1)
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        scores = self.score(self.norm(pooled.float()))
        cap = float(self.config.termwise_cap)
        if cap > 0:
            scores = cap * torch.tanh(scores / cap)
        level = getattr(self.config, "termwise_level", None)
        if level is not None:
            scale, offset = torch.tensor(level, dtype=scores.dtype, device=scores.device)
            scores = scores * scale + offset
        return SequenceClassifierOutput(logits=scores)
