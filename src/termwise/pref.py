"""Saving, loading and using a trained preference model from Python.

>>> scorer = termwise.pref.load("runs/pref/model")
>>> p, std = scorer.probability(["Is 7 prime?"], ["Yes."], ["No."])
>>> scorer.reward(["Is 7 prime?"], ["Yes."])  # bt only
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from termwise.data.batching import length_batches, pad
from termwise.data.preferences import (
    EncodedPairs,
    PreferencePair,
    collate_pairs,
    encode_pair,
    encode_pairs,
)
from termwise.errors import TermwiseUserError
from termwise.models.backbone import (
    read_manifest,
    restore_backbone,
    save_backbone,
    write_manifest,
)
from termwise.models.preference import PreferenceModel

FORMAT = "termwise-pref/1"
MANIFEST = "termwise_pref.json"


def save_preference_model(
    model: PreferenceModel, tokenizer: Any, directory: Path, manifest: dict[str, Any]
) -> None:
    """``termwise_pref.json`` (head kind and settings, backbone reference), ``head.safetensors``
    (norm, output layers), ``tokenizer/``, and ``adapter/`` (LoRA) or ``backbone/`` (full)."""
    lora = save_backbone(model.backbone, tokenizer, directory)
    save_model(model.head_modules(), str(directory / "head.safetensors"))
    payload = {
        **manifest,
        "format": FORMAT,
        "head": model.head,
        "pooling": model.pooling,
        "dim": model.dim,
        "tau": model.tau,
        "prompt_scaling": model.prompt_scaling,
        "lora": lora,
    }
    write_manifest(directory / MANIFEST, payload)


def load_preference_model(directory: Path) -> tuple[PreferenceModel, Any, dict[str, Any]]:
    """Inverse of :func:`save_preference_model`: model (eval mode), tokenizer, manifest."""
    from transformers import AutoTokenizer

    manifest = read_manifest(directory / MANIFEST, FORMAT, "preference model")
    backbone, config = restore_backbone(directory, manifest["lora"], manifest["backbone_path"])
    model = PreferenceModel(
        backbone,
        config.hidden_size,
        manifest["head"],
        manifest["pooling"],
        dim=manifest["dim"],
        tau=manifest["tau"],
        prompt_scaling=manifest["prompt_scaling"],
    )
    load_model(model.head_modules(), str(directory / "head.safetensors"))
    tokenizer = AutoTokenizer.from_pretrained(str(directory / "tokenizer"), local_files_only=True)
    return model.eval(), tokenizer, manifest


def pair_batches(encoded: EncodedPairs, batch_size: int) -> Iterator[list[int]]:
    """Pair indices grouped by similar length (longest first) to keep padding small."""
    return length_batches(encoded.lengths().tolist(), batch_size)


@torch.no_grad()
def predict_pairs(
    model: PreferenceModel,
    encoded: EncodedPairs,
    pad_id: int,
    n_samples: int = 16,
    batch_size: int = 32,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``P(chosen > rejected)`` and its std per pair, in input order. For ``bayes_gpm``
    the mean and std over ``n_samples`` Monte Carlo draws (seeded: the same call gives the
    same numbers); other heads have std 0."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    probability = np.zeros(len(encoded), dtype=np.float64)
    spread = np.zeros(len(encoded), dtype=np.float64)
    for rows in pair_batches(encoded, batch_size):
        batch = {k: v.to(device) for k, v in collate_pairs(encoded, rows, pad_id).items()}
        draws = n_samples if model.head == "bayes_gpm" else 1
        logits = model(batch, n_samples=draws, generator=generator).logits
        p = torch.sigmoid(logits.double().reshape(-1, len(rows)))
        probability[rows] = p.mean(0).cpu().numpy()
        spread[rows] = p.std(0, correction=0).cpu().numpy()
    return probability, spread


@dataclass
class PreferenceScorer:
    model: PreferenceModel
    tokenizer: Any
    manifest: dict[str, Any]

    @property
    def head(self) -> str:
        return self.model.head

    def _encode(self, prompts: Sequence[str], a: Sequence[str], b: Sequence[str]) -> EncodedPairs:
        if not len(prompts) == len(a) == len(b):
            raise ValueError("prompts, a and b must have the same length")
        pairs = [PreferencePair(p, x, y) for p, x, y in zip(prompts, a, b, strict=True)]
        return encode_pairs(self.tokenizer, pairs, self.manifest["max_length"])

    def probability(
        self,
        prompts: Sequence[str],
        a: Sequence[str],
        b: Sequence[str],
        n_samples: int | None = None,
        batch_size: int = 32,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``P(a > b | prompt)`` per pair and its std (0 unless ``bayes_gpm``)."""
        draws = n_samples or self.manifest.get("n_samples", 16)
        return predict_pairs(
            self.model, self._encode(prompts, a, b), self._pad_id, draws, batch_size
        )

    @torch.no_grad()
    def reward(
        self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 32
    ) -> np.ndarray:
        """Scalar reward per (prompt, response): ``bt`` only (a GPM scores pairs, not items)."""
        if self.head != "bt":
            raise TermwiseUserError(
                f"single-response rewards need a bt model; this one is {self.head} "
                "(score pairs instead)"
            )
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses must have the same length")
        max_length = self.manifest["max_length"]
        ids = [
            encode_pair(self.tokenizer, p, r, max_length)[0]
            for p, r in zip(prompts, responses, strict=True)
        ]
        device = next(self.model.parameters()).device
        out = np.zeros(len(ids), dtype=np.float64)
        for rows in length_batches([len(row) for row in ids], batch_size):
            input_ids, mask = pad([ids[i] for i in rows], self._pad_id)
            input_ids, mask = input_ids.to(device), mask.to(device)
            pooled, _ = self.model.features(input_ids, mask, mask)  # bt: no prompt head
            out[rows] = self.model.reward(pooled).double().cpu().numpy()
        return out

    @property
    def _pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)


def load(path: str | Path) -> PreferenceScorer:
    """A saved preference model directory (``termwise pref train`` writes ``OUT/model``)."""
    model, tokenizer, manifest = load_preference_model(Path(path))
    return PreferenceScorer(model, tokenizer, manifest)
