"""The bottleneck model: tokens -> encoder -> latent tokens (Gaussian) -> decoder or
classifier. ``use_latent: false`` makes it a plain autoregressive language model (z = 0)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field
from safetensors.torch import save_model
from torch import Tensor, nn

from termwise.config import StrictModel
from termwise.data.jsonl import atomic_directory, write_json
from termwise.models.saved import load_head_weights, read_manifest
from termwise.recipes.vae.config import Task, VaeModelConfig
from termwise.recipes.vae.data import BOS, EOS, PAD, UNK, Vocabulary

FORMAT = "termwise-vae/1"
MANIFEST = "termwise_vae.json"
WEIGHTS = "model.safetensors"


class VaeOutput(NamedTuple):
    """One batch: ``logits`` ([B, L+1, V] next-token or [B, C] class), the posterior
    (``mu``, ``logvar``, ``z``: [B, T, D]; None without a latent), and ``teacher`` (the
    prediction the teacher term compares with its target)."""

    logits: Tensor
    mu: Tensor | None
    logvar: Tensor | None
    z: Tensor | None
    teacher: Tensor | None


def decoder_targets(ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Decoder inputs ``<bos> w1 .. wn`` and targets ``w1 .. wn <eos>`` (PAD after)."""
    batch = ids.shape[0]
    inputs = torch.cat([torch.full((batch, 1), BOS, dtype=ids.dtype, device=ids.device), ids], 1)
    targets = torch.cat([ids, torch.zeros(batch, 1, dtype=ids.dtype, device=ids.device)], 1)
    targets[torch.arange(batch, device=ids.device), lengths] = EOS
    return inputs, targets


class SentenceVAE(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        config: VaeModelConfig,
        max_tokens: int,
        task: Task = "reconstruct",
        teacher_dim: int = 0,
        n_labels: int = 0,
    ) -> None:
        super().__init__()
        self.config, self.task, self.max_tokens = config, task, max_tokens
        self.latent_size = config.num_latent_tokens * config.latent_dim
        self.embedding = nn.Embedding(vocab_size, config.embed_dim, padding_idx=PAD)
        self.encoder = _Encoder(config, max_tokens)
        self.to_latent = nn.Linear(self.encoder.width, 2 * self.latent_size)
        if task == "reconstruct":
            hidden = config.decoder_hidden
            rnn = nn.LSTM if config.decoder == "lstm" else nn.GRU
            self.init_hidden = nn.Linear(self.latent_size, hidden)
            self.rnn = rnn(config.embed_dim + self.latent_size, hidden, batch_first=True)
            self.out = nn.Linear(hidden, vocab_size)
            self.teacher_head = nn.Linear(self.latent_size, teacher_dim) if teacher_dim else None
        else:
            self.classifier = nn.Linear(self.latent_size, n_labels)

    def parts(self) -> dict[str, list[nn.Module]]:
        """What a curriculum stage can freeze."""
        decoder: list[nn.Module] = (
            [self.init_hidden, self.rnn, self.out]
            if self.task == "reconstruct"
            else [self.classifier]
        )
        return {
            "embedding": [self.embedding],
            "encoder": [self.encoder, self.to_latent],
            "decoder": decoder,
        }

    def encode(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean and log-variance, ``[B, num_latent_tokens, latent_dim]``."""
        stats = self.to_latent(self.encoder(self.embedding(ids), lengths))
        mu, logvar = stats.view(ids.shape[0], self.config.num_latent_tokens, -1).chunk(2, -1)
        return mu, logvar

    def decode(self, z: Tensor, inputs: Tensor) -> Tensor:
        """Next-token logits with teacher forcing; ``z`` ([B, latent_size]) conditions
        every step (concatenated to the input) and the initial state."""
        if self.training and self.config.word_dropout > 0:
            drop = torch.rand(inputs.shape, device=inputs.device) < self.config.word_dropout
            drop[:, 0] = False  # keep <bos>
            inputs = inputs.masked_fill(drop & (inputs != PAD), UNK)
        embedded = self.embedding(inputs)
        steps = z[:, None, :].expand(-1, inputs.shape[1], -1)
        state = torch.tanh(self.init_hidden(z))[None]
        initial = (state, torch.zeros_like(state)) if isinstance(self.rnn, nn.LSTM) else state
        hidden, _ = self.rnn(torch.cat([embedded, steps], -1), initial)
        return self.out(hidden)

    def forward(
        self,
        ids: Tensor,
        lengths: Tensor,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> VaeOutput:
        batch = ids.shape[0]
        mu = logvar = z = None
        if self.config.use_latent:
            mu, logvar = self.encode(ids, lengths)
            z = mu
            if sample:  # evaluation at the mean draws nothing (the global RNG stays put)
                noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
                z = mu + noise * (0.5 * logvar).exp()
            flat = z.reshape(batch, -1)
        else:
            flat = torch.zeros(batch, self.latent_size, device=ids.device)
        if self.task == "classify":
            return VaeOutput(self.classifier(flat), mu, logvar, z, None)
        inputs, _ = decoder_targets(ids, lengths)
        teacher = None
        if self.teacher_head is not None and mu is not None:
            teacher = self.teacher_head(mu.reshape(batch, -1))
        return VaeOutput(self.decode(flat, inputs), mu, logvar, z, teacher)

    @torch.no_grad()
    def generate(
        self, z: Tensor, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """Token ids decoded from ``z`` ([B, latent_size]): greedy at temperature 0."""
        batch = z.shape[0]
        tokens = torch.full((batch, 1), BOS, dtype=torch.long, device=z.device)
        for _ in range(self.max_tokens + 1):
            logits = self.decode(z, tokens)[:, -1]
            if temperature > 0:
                probabilities = F.softmax(logits / temperature, -1)
                step = torch.multinomial(probabilities, 1, generator=generator)
            else:
                step = logits.argmax(-1, keepdim=True)
            tokens = torch.cat([tokens, step], 1)
        return tokens[:, 1:]


class _Encoder(nn.Module):
    """A bidirectional GRU (final states of both directions) or a small transformer
    (masked mean over positions): ``[B, L, E]`` -> ``[B, width]``."""

    def __init__(self, config: VaeModelConfig, max_tokens: int) -> None:
        super().__init__()
        self.kind = config.encoder
        if self.kind == "gru":
            self.rnn = nn.GRU(
                config.embed_dim,
                config.encoder_hidden,
                num_layers=config.encoder_layers,
                batch_first=True,
                bidirectional=True,
            )
            self.width = 2 * config.encoder_hidden
        else:
            self.project = nn.Linear(config.embed_dim, config.encoder_hidden)
            self.position = nn.Parameter(torch.zeros(max_tokens, config.encoder_hidden))
            layer = nn.TransformerEncoderLayer(
                config.encoder_hidden,
                config.heads,
                dim_feedforward=2 * config.encoder_hidden,
                dropout=0.0,
                batch_first=True,
            )
            self.transformer = nn.TransformerEncoder(
                layer, config.encoder_layers, enable_nested_tensor=False
            )
            self.width = config.encoder_hidden

    def forward(self, embedded: Tensor, lengths: Tensor) -> Tensor:
        if self.kind == "gru":
            packed = nn.utils.rnn.pack_padded_sequence(
                embedded, lengths.cpu().clamp_min(1), batch_first=True, enforce_sorted=False
            )
            _, final = self.rnn(packed)
            return torch.cat([final[-2], final[-1]], -1)
        positions = torch.arange(embedded.shape[1], device=embedded.device)
        padding = positions[None] >= lengths[:, None]
        hidden = self.transformer(
            self.project(embedded) + self.position[: embedded.shape[1]],
            src_key_padding_mask=padding,
        )
        keep = (~padding).float()[..., None]
        return (hidden * keep).sum(1) / keep.sum(1).clamp_min(1.0)


# -- saving and loading -------------------------------------------------------------------


class VaeManifest(StrictModel):
    """``termwise_vae.json``: what rebuilds the model and reads new text."""

    format: str = Field(..., description="termwise-vae/1.")
    task: Task = Field(..., description="reconstruct or classify.")
    model: VaeModelConfig = Field(..., description="The model's shape.")
    max_tokens: int = Field(..., ge=1, description="Tokens per example.")
    teacher_dim: int = Field(0, ge=0, description="Width of the teacher head.")
    label_names: list[str] = Field(default_factory=list, description="Classes (classify).")
    words: list[str] = Field(..., min_length=5, description="The vocabulary.")
    free_bits: float = Field(0.0, ge=0, description="The threshold at save time.")
    reduce: Literal["mean_dims", "per_dim", "sum_dims"] = Field(
        "mean_dims", description="Where free bits applied."
    )


def save_vae(
    model: SentenceVAE,
    vocab: Vocabulary,
    directory: Path,
    free_bits: float,
    label_names: list[str],
    reduce: str = "mean_dims",
) -> None:
    """Weights and manifest, written beside ``directory`` and renamed into place."""
    with atomic_directory(directory) as partial:
        # A CPU copy: on a GPU, cuDNN packs the GRU weights into one buffer, which safetensors
        # refuses to save as separate tensors.
        save_model(copy.deepcopy(model).cpu(), str(partial / WEIGHTS))
        teacher = getattr(model, "teacher_head", None)
        manifest = VaeManifest(
            format=FORMAT,
            task=model.task,
            model=model.config,
            max_tokens=model.max_tokens,
            teacher_dim=teacher.out_features if teacher is not None else 0,
            label_names=label_names,
            words=vocab.words,
            free_bits=free_bits,
            reduce=reduce,
        )
        write_json(partial / MANIFEST, manifest.model_dump(mode="json"))


def load_vae(directory: Path) -> tuple[SentenceVAE, Vocabulary, VaeManifest]:
    manifest = read_manifest(directory, MANIFEST, VaeManifest, FORMAT, "vae model")
    vocab = Vocabulary(manifest.words)
    model = SentenceVAE(
        len(vocab.words),
        manifest.model,
        manifest.max_tokens,
        manifest.task,
        manifest.teacher_dim,
        len(manifest.label_names),
    )
    load_head_weights(model, directory / WEIGHTS)
    return model.eval(), vocab, manifest
