"""Sentences from a trained bottleneck: prior samples and interpolations."""

from __future__ import annotations

import torch

from termwise.errors import TermwiseUserError
from termwise.recipes.vae.data import Vocabulary, encode_texts
from termwise.recipes.vae.model import SentenceVAE


def sample_prior(
    model: SentenceVAE, vocab: Vocabulary, count: int, temperature: float, seed: int
) -> list[str]:
    """Decode ``count`` draws of ``z ~ N(0, I)``."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(count, model.latent_size, generator=generator)
    ids = model.generate(z, temperature, generator)
    return [vocab.decode(row.tolist()) for row in ids]


def interpolate(
    model: SentenceVAE, vocab: Vocabulary, first: str, second: str, steps: int = 5
) -> list[str]:
    """Greedy decodes along the line between two sentences' posterior means."""
    if model.task != "reconstruct" or not model.config.use_latent:
        raise TermwiseUserError("interpolation needs a sentence VAE with a latent")
    ids, lengths = encode_texts(vocab, [first, second], model.max_tokens)
    with torch.no_grad():
        mu, _ = model.encode(ids, lengths)
    flat = mu.reshape(2, -1)
    weights = torch.linspace(0, 1, steps)[:, None]
    z = (1 - weights) * flat[0] + weights * flat[1]
    return [vocab.decode(row.tolist()) for row in model.generate(z)]
