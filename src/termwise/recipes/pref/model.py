"""Pairwise preference models on one backbone: Bradley-Terry, GPM and Bayesian GPM heads.

Both responses of a pair go through the backbone in one batch of ``2B`` sequences (chosen
first, then rejected). Every head reads the pooled hidden state of (prompt, response)
through an RMSNorm:

* ``bt``: a scalar reward; ``logit = r_chosen - r_rejected``.
* ``gpm``: a ``2k``-dim embedding normalised to the unit sphere (in training AND at
  inference); ``logit = <R v_c, v_r> / tau`` (:func:`termwise.terms.preference.gpm_score`).
* ``bayes_gpm``: ``raw_mu`` and ``logvar`` (``2k`` each); a draw is
  ``normalize(raw_mu + eps * exp(logvar / 2))``. The KL lives on the ambient parameters.

With ``reward_head`` (gpm, bayes_gpm) a scalar reward is added beside the skew-symmetric
score, ``logit = r_chosen - r_rejected + <R v_c, v_r> / tau``: the transitive part of a
preference is carried by the reward, the cyclic part by the embedding. Its weights start at
zero, so an untrained model scores as the plain gpm does.

With ``prompt_scaling`` the ``k`` blocks are weighted by ``lambda = k * softmax(W h_p)``.
``h_p`` is the prompt's pooled hidden state averaged over the pair's two sequences: for a
causal LM both copies are identical; for a bidirectional encoder each copy has seen its
own response, and averaging keeps ``lambda`` symmetric in (a, b), hence ``s(a, b) =
-s(b, a)`` still holds exactly.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn

from termwise.models.backbone import Pooling, pool
from termwise.models.saved import (
    SavedManifest,
    load_head_weights,
    read_manifest,
    restore_backbone,
    rewrite_manifest,
    write_model_dir,
)
from termwise.recipes.pref.calibration import Calibration, CalibrationFit
from termwise.recipes.pref.config import PreferenceKind
from termwise.terms.preference import gpm_score

FORMAT = "termwise-pref/1"
MANIFEST = "termwise_pref.json"
WEIGHTS = "head.safetensors"
# E|y| for y = Linear(x) under PyTorch's default init (U(+-1/sqrt(in))) on RMS-normalised
# x: Var y = in * (1 / (3 in)) = 1/3, and E|y| = sqrt(2 / pi) * sqrt(1 / 3).
INITIAL_ABS_MU = math.sqrt(2 / math.pi) * math.sqrt(1 / 3)


class PairOutput(NamedTuple):
    """What one pair batch produced (a tuple, so DDP can find its tensors). ``logits`` is
    ``[B]`` (or ``[S, B]`` with ``S`` Monte Carlo draws); ``P(chosen > rejected) =
    sigmoid(logits)``."""

    logits: Tensor
    rewards: Tensor | None = None  # bt: [2B]
    raw_mu: Tensor | None = None  # bayes_gpm: [2B, 2k]
    logvar: Tensor | None = None  # bayes_gpm: [2B, 2k]


class PreferenceModel(nn.Module):
    """Backbone + preference head of one ``kind``; ``model(batch)`` scores pairs."""

    def __init__(
        self,
        backbone: nn.Module,
        hidden_size: int,
        kind: PreferenceKind,
        pooling: Pooling,
        dim: int = 8,
        tau: float = 0.1,
        prompt_scaling: bool = False,
        init_std_ratio: float = 0.1,
        reward_head: bool = False,
    ) -> None:
        super().__init__()
        if kind != "bt" and (dim < 2 or dim % 2):
            raise ValueError(f"PreferenceModel: dim must be even and >= 2, got {dim}")
        self.backbone = backbone
        self.kind: PreferenceKind = kind
        self.pooling: Pooling = pooling
        self.dim, self.tau, self.prompt_scaling = dim, tau, prompt_scaling
        self.norm = nn.RMSNorm(hidden_size, eps=1e-6)
        self.out = nn.Linear(hidden_size, 1 if kind == "bt" else dim)
        self.logvar: nn.Linear | None = None
        self.prompt_head: nn.Linear | None = None
        if kind == "bayes_gpm":
            self.logvar = nn.Linear(hidden_size, dim)
            # Start with std = init_std_ratio * E|raw_mu|: with a large starting noise the
            # normalised draw is a near-random direction, so the mean gets no usable
            # gradient and training stalls; the KL (weight warming up from 0) then raises
            # the variance once the mean carries signal.
            nn.init.zeros_(self.logvar.weight)
            nn.init.constant_(self.logvar.bias, 2 * math.log(init_std_ratio * INITIAL_ABS_MU))
        if prompt_scaling and kind != "bt":
            self.prompt_head = nn.Linear(hidden_size, dim // 2)
        self.reward_out: nn.Linear | None = None
        if reward_head and kind != "bt":
            # No bias: it cancels in r_a - r_b. Zero weights: starts as the plain GPM.
            self.reward_out = nn.Linear(hidden_size, 1, bias=False)
            nn.init.zeros_(self.reward_out.weight)

    # -- features -------------------------------------------------------------------------

    def features(
        self, input_ids: Tensor, attention_mask: Tensor, prompt_mask: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """Normalised pooled hidden state per sequence, and of its prompt (when needed)."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        hidden = hidden.last_hidden_state
        pooled = self.norm(pool(hidden, attention_mask, self.pooling).float())
        if self.prompt_head is None:
            return pooled, None
        return pooled, self.norm(pool(hidden, prompt_mask, self.pooling).float())

    def block_scale(self, prompt: Tensor | None) -> Tensor | None:
        """``lambda = k * softmax(W h_p)`` per pair, or None without prompt scaling."""
        if self.prompt_head is None or prompt is None:
            return None
        chosen, rejected = prompt.chunk(2)
        k = self.dim // 2
        return k * torch.softmax(self.prompt_head((chosen + rejected) / 2), dim=-1)

    # -- heads ----------------------------------------------------------------------------

    def reward(self, pooled: Tensor) -> Tensor:
        return self.out(pooled).squeeze(-1)

    @property
    def reward_head(self) -> bool:
        return self.reward_out is not None

    def reward_gap(self, pooled: Tensor) -> Tensor | float:
        """``r_chosen - r_rejected`` of the reward beside the embedding (0 without one)."""
        if self.reward_out is None:
            return 0.0
        chosen, rejected = self.reward_out(pooled).squeeze(-1).chunk(2)
        return chosen - rejected

    def embedding(self, pooled: Tensor) -> Tensor:
        """The gpm unit vector, or the bayes_gpm posterior mean direction."""
        return F.normalize(self.out(pooled), dim=-1)

    def posterior(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        assert self.logvar is not None
        return self.out(pooled), self.logvar(pooled)

    def forward(
        self, batch: dict[str, Tensor], n_samples: int = 1, generator: Any = None
    ) -> PairOutput:
        """Logits for ``B`` pairs from a ``2B``-row batch (chosen rows first). For
        ``bayes_gpm``, ``n_samples`` draws give ``logits`` of shape ``[n_samples, B]``;
        ``n_samples=0`` uses the posterior mean direction (no noise)."""
        pooled, prompt = self.features(
            batch["input_ids"], batch["attention_mask"], batch["prompt_mask"]
        )
        if self.kind == "bt":
            rewards = self.reward(pooled)
            chosen, rejected = rewards.chunk(2)
            return PairOutput(chosen - rejected, rewards=rewards)
        scale, gap = self.block_scale(prompt), self.reward_gap(pooled)
        if self.kind == "gpm":
            v_c, v_r = self.embedding(pooled).chunk(2)
            return PairOutput(gpm_score(v_c, v_r, scale) / self.tau + gap)
        raw_mu, logvar = self.posterior(pooled)
        if n_samples == 0:
            v_c, v_r = F.normalize(raw_mu, dim=-1).chunk(2)
            logits = gpm_score(v_c, v_r, scale) / self.tau + gap
            return PairOutput(logits, raw_mu=raw_mu, logvar=logvar)
        std = (0.5 * logvar).exp()
        noise = torch.randn(
            (n_samples, *raw_mu.shape),
            generator=generator,
            device=raw_mu.device,
            dtype=raw_mu.dtype,
        )
        draws = F.normalize(raw_mu + noise * std, dim=-1)
        v_c, v_r = draws.chunk(2, dim=1)
        logits = gpm_score(v_c, v_r, scale) / self.tau + gap  # the gap is the same per draw
        return PairOutput(logits, raw_mu=raw_mu, logvar=logvar)

    def head_modules(self) -> nn.ModuleDict:
        """Every trained part outside the backbone (saved with the adapter)."""
        parts: dict[str, nn.Module] = {"norm": self.norm, "out": self.out}
        if self.logvar is not None:
            parts["logvar"] = self.logvar
        if self.prompt_head is not None:
            parts["prompt_head"] = self.prompt_head
        if self.reward_out is not None:
            parts["reward_out"] = self.reward_out
        return nn.ModuleDict(parts)


class PreferenceManifest(SavedManifest):
    """``termwise_pref.json``: what the preference model needs to score pairs."""

    kind: PreferenceKind = Field(..., description="bt, gpm or bayes_gpm.")
    dim: int = Field(..., ge=1, description="Embedding size (gpm, bayes_gpm).")
    tau: float = Field(..., gt=0, description="Logit temperature of the gpm score.")
    prompt_scaling: bool = Field(..., description="Per-block prompt scaling.")
    reward_head: bool = Field(
        False, description="A scalar reward added beside the skew-symmetric score."
    )
    n_samples: int = Field(16, ge=1, description="Monte Carlo draws (bayes_gpm).")
    temperature: float = Field(
        1.0, gt=0, description="Scores are divided by it before the sigmoid (1: uncalibrated)."
    )
    power: float = Field(
        1.0,
        gt=0,
        description="A score's magnitude over the temperature is raised to it (1: none).",
    )
    calibration: dict[str, Any] | None = Field(
        None, description="Where temperature and power were fitted: file, pairs, NLL and ECE."
    )
    trained_subsets: dict[str, list[str]] | None = Field(
        None,
        description="category -> subsets of the training pairs (null: saved before they "
        "were recorded); pref eval reports the subsets outside them apart.",
    )

    def fitted_calibration(self) -> Calibration:
        """The map from scores to calibrated logits saved with the model."""
        return Calibration(self.temperature, self.power)

    @model_validator(mode="before")
    @classmethod
    def _renamed_head(cls, data: Any) -> Any:
        """Models saved before ``kind`` named it ``head``."""
        if isinstance(data, dict) and "head" in data and "kind" not in data:
            data = {("kind" if k == "head" else k): v for k, v in data.items()}
        return data


def save_preference_model(
    model: PreferenceModel, tokenizer: Any, directory: Path, manifest: dict[str, Any]
) -> None:
    """``termwise_pref.json`` (kind and settings, backbone reference), ``head.safetensors``
    (norm, output layers), ``tokenizer/``, and ``adapter/`` (LoRA) or ``backbone/`` (full)."""
    from peft import PeftModel

    payload = PreferenceManifest.model_validate(
        {
            **manifest,
            "format": FORMAT,
            "kind": model.kind,
            "pooling": model.pooling,
            "dim": model.dim,
            "tau": model.tau,
            "prompt_scaling": model.prompt_scaling,
            "reward_head": model.reward_head,
            "lora": isinstance(model.backbone, PeftModel),
        }
    )
    heads = model.head_modules()
    write_model_dir(directory, model.backbone, tokenizer, heads, WEIGHTS, MANIFEST, payload)


def load_preference_model(directory: Path) -> tuple[PreferenceModel, Any, PreferenceManifest]:
    """Inverse of :func:`save_preference_model`: model (eval mode), tokenizer, manifest."""
    manifest = read_manifest(directory, MANIFEST, PreferenceManifest, FORMAT, "preference model")
    backbone, config, tokenizer = restore_backbone(directory, manifest)
    model = PreferenceModel(
        backbone,
        config.hidden_size,
        manifest.kind,
        manifest.pooling,
        dim=manifest.dim,
        tau=manifest.tau,
        prompt_scaling=manifest.prompt_scaling,
        reward_head=manifest.reward_head,
    )
    load_head_weights(model.head_modules(), directory / WEIGHTS)
    return model.eval(), tokenizer, manifest


def store_calibration(
    directory: Path, fit: CalibrationFit, source: Path, categories: dict[str, set[str]]
) -> None:
    """Save a fitted calibration in a saved model's manifest (the weights stay as they are),
    with where it was fitted: the file and its categories and subsets (``category ->
    subsets``), so an evaluation can say when it meets pairs of others."""
    manifest = read_manifest(directory, MANIFEST, PreferenceManifest, FORMAT, "preference model")
    calibration = {
        "file": str(source),
        **dataclasses.asdict(fit),
        "categories": {c: sorted(subsets) for c, subsets in sorted(categories.items())},
    }
    updated = manifest.model_copy(
        update={"temperature": fit.temperature, "power": fit.power, "calibration": calibration}
    )
    rewrite_manifest(directory, MANIFEST, updated)
