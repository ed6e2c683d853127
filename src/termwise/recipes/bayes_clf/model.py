"""A small Bayesian sequence classifier: per-step features -> transformer -> Bayesian head."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from termwise.models.bayes import BayesLinear


class BayesSequenceClassifier(nn.Module):
    """``Linear`` embedding of each step's features plus a learned position embedding, a
    transformer encoder, mean pooling over steps, then two :class:`BayesLinear` layers
    (hidden and output): the uncertainty sits where the decision is made."""

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        window: int,
        d_model: int = 64,
        layers: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
        prior_sigma: float = 1.0,
        posterior_std_init: float = 1e-3,
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, d_model)
        self.position = nn.Parameter(torch.zeros(window, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.hidden = BayesLinear(
            d_model, d_model, prior_sigma=prior_sigma, posterior_std_init=posterior_std_init
        )
        self.output = BayesLinear(
            d_model, n_classes, prior_sigma=prior_sigma, posterior_std_init=posterior_std_init
        )
        self.activation = nn.GELU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.encoder(self.embed(x) + self.position[: x.shape[1]])
        pooled = self.dropout(h.mean(dim=1))
        return self.output(self.dropout(self.activation(self.hidden(pooled))))
