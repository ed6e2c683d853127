"""The free-bits demo's model: an MLP encoder to a bounded Gaussian latent and a linear
classifier on a sample of it (the bound caps the KL one dimension can carry: see
:mod:`termwise.recipes.free_bits_demo.recipe`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BottleneckClassifier(nn.Module):
    """MLP encoder to a bounded Gaussian latent, linear classifier on a sample of it."""

    def __init__(
        self,
        inputs: int,
        hidden: int,
        latent: int,
        classes: int,
        mean_bound: float,
        logvar_range: float,
    ) -> None:
        super().__init__()
        self.mean_bound = mean_bound
        self.logvar_range = logvar_range
        self.encoder = nn.Sequential(
            nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent)
        )
        self.classifier = nn.Linear(latent, classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        raw_mu, raw_logvar = self.encoder(x).chunk(2, dim=-1)
        mu = self.mean_bound * torch.tanh(raw_mu)
        logvar = -self.logvar_range * torch.sigmoid(raw_logvar)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.classifier(z), mu, logvar
