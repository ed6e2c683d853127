"""Saving, loading and using a trained preference model from Python.

>>> scorer = termwise.pref.load("runs/pref/model")
>>> p, std = scorer.probability(["Is 7 prime?"], ["Yes."], ["No."])
>>> scorer.reward(["Is 7 prime?"], ["Yes."])  # bt only
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from torch import Tensor

from termwise.data.batching import map_batches, pad
from termwise.data.jsonl import atomic_write, check_output, check_readable, record_chunks
from termwise.errors import TermwiseUserError
from termwise.recipes.pref.calibration import RAW, Calibration, probabilities
from termwise.recipes.pref.data import (
    PLAIN_SEPARATOR,
    EncodedPairs,
    PreferencePair,
    collate_pairs,
    encode_pair,
    encode_pairs,
    parse_scoring_record,
)
from termwise.recipes.pref.model import (
    PreferenceManifest,
    PreferenceModel,
    load_preference_model,
)


def pair_scores(
    model: PreferenceModel,
    encoded: EncodedPairs,
    pad_id: int,
    n_samples: int = 16,
    batch_size: int = 32,
    seed: int = 0,
) -> np.ndarray:
    """Scores (logits of chosen over rejected) ``[draws, pairs]``, in input order: one
    draw for ``bt`` and ``gpm``, ``n_samples`` seeded posterior draws for ``bayes_gpm``
    (the same call gives the same numbers)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    draws = n_samples if model.kind == "bayes_gpm" else 1

    def run(rows: list[int]) -> Tensor:
        batch = {k: v.to(device) for k, v in collate_pairs(encoded, rows, pad_id).items()}
        logits = model(batch, n_samples=draws, generator=generator).logits
        return logits.double().reshape(-1, len(rows)).T

    with torch.no_grad():
        out = map_batches(encoded.lengths().tolist(), run, batch_size).numpy()
    return out.T if len(out) else np.zeros((draws, 0))


def predict_pairs(
    model: PreferenceModel,
    encoded: EncodedPairs,
    pad_id: int,
    n_samples: int = 16,
    batch_size: int = 32,
    seed: int = 0,
    calibration: Calibration = RAW,
) -> tuple[np.ndarray, np.ndarray]:
    """``P(chosen > rejected)`` and its std per pair, in input order, under ``calibration``
    (:mod:`termwise.recipes.pref.calibration`). For ``bayes_gpm`` the mean and std over
    ``n_samples`` Monte Carlo draws; other kinds have std 0."""
    scores = pair_scores(model, encoded, pad_id, n_samples, batch_size, seed)
    return probabilities(scores, calibration)


@dataclass
class PreferenceScorer:
    model: PreferenceModel
    tokenizer: Any
    manifest: PreferenceManifest

    @property
    def kind(self) -> str:
        return self.model.kind

    def _encode(self, prompts: Sequence[str], a: Sequence[str], b: Sequence[str]) -> EncodedPairs:
        if not len(prompts) == len(a) == len(b):
            raise ValueError("prompts, a and b must have the same length")
        pairs = [PreferencePair(p, x, y) for p, x, y in zip(prompts, a, b, strict=True)]
        return encode_pairs(self.tokenizer, pairs, self.manifest.max_length)

    def probability(
        self,
        prompts: Sequence[str],
        a: Sequence[str],
        b: Sequence[str],
        n_samples: int | None = None,
        batch_size: int = 32,
        calibrated: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``P(a > b | prompt)`` per pair and its std (0 unless ``bayes_gpm``), under the
        calibration saved with the model (``calibrated=False``: the raw scores)."""
        calibration = self.manifest.fitted_calibration() if calibrated else RAW
        return probabilities(self.scores(prompts, a, b, n_samples, batch_size), calibration)

    def scores(
        self,
        prompts: Sequence[str],
        a: Sequence[str],
        b: Sequence[str],
        n_samples: int | None = None,
        batch_size: int = 32,
    ) -> np.ndarray:
        """Raw scores of a over b, ``[draws, pairs]`` (see :func:`pair_scores`)."""
        draws = n_samples or self.manifest.n_samples
        return pair_scores(self.model, self._encode(prompts, a, b), self._pad_id, draws, batch_size)

    @torch.no_grad()
    def reward(
        self, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 32
    ) -> np.ndarray:
        """Scalar reward per (prompt, response): ``bt`` only (a GPM scores pairs, not items)."""
        if self.kind != "bt":
            raise TermwiseUserError(
                f"single-response rewards need a bt model; this one is {self.kind} "
                "(score pairs instead)"
            )
        if len(prompts) != len(responses):
            raise ValueError("prompts and responses must have the same length")
        max_length = self.manifest.max_length
        ids = [
            encode_pair(self.tokenizer, p, r, max_length)[0]
            for p, r in zip(prompts, responses, strict=True)
        ]
        device = next(self.model.parameters()).device

        def run(rows: list[int]) -> Tensor:
            input_ids, mask = pad([ids[i] for i in rows], self._pad_id)
            input_ids, mask = input_ids.to(device), mask.to(device)
            pooled, _ = self.model.features(input_ids, mask, mask)  # bt: no prompt head
            return self.model.reward(pooled).double()

        return map_batches([len(row) for row in ids], run, batch_size).numpy()

    @property
    def _pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)


def load(path: str | Path) -> PreferenceScorer:
    """A saved preference model directory (``termwise pref train`` writes ``OUT/model``)."""
    model, tokenizer, manifest = load_preference_model(Path(path))
    return PreferenceScorer(model, tokenizer, manifest)


def _score_chunk(
    scorer: PreferenceScorer,
    rows: list[tuple[int, dict[str, Any]]],
    path: Path,
    batch_size: int,
    calibrated: bool,
) -> None:
    pairs: list[tuple[dict[str, Any], tuple[str, ...]]] = []
    singles: list[dict[str, Any]] = []
    for line, row in rows:
        shape, fields = parse_scoring_record(row, path, line, scorer.kind)
        if shape == "pair":
            pairs.append((row, fields))
        else:
            singles.append(row)
    if pairs:
        p, std = scorer.probability(
            [r["prompt"] for r, _ in pairs],
            [r[f[0]] for r, f in pairs],
            [r[f[1]] for r, f in pairs],
            batch_size=batch_size,
            calibrated=calibrated,
        )
        for (row, _), value, spread in zip(pairs, p, std, strict=True):
            row["preference"] = {"p": float(value), "std": float(spread)}
    if singles:
        rewards = scorer.reward(
            [r["prompt"] for r in singles], [r["response"] for r in singles], batch_size
        )
        for row, reward in zip(singles, rewards, strict=True):
            row["reward"] = float(reward)


def score_file(
    model: Path,
    input_path: Path,
    output: Path,
    batch_size: int = 32,
    chunk: int = 1024,
    calibrated: bool = True,
    force: bool = False,
) -> int:
    """Score every record of ``input_path`` into ``output``; returns the record count.
    The output is written to a temporary file and renamed at the end, so a bad record
    never leaves a half-written output behind."""
    check_readable(input_path, "input file")
    from termwise.trainer.run_dir import model_inputs

    check_output(output, input_path, *model_inputs(model), force=force, owner="pref score")
    scorer = load(model)
    count = 0
    with atomic_write(output, owner="pref score") as handle:
        for rows, _ in record_chunks(input_path, chunk):
            _score_chunk(scorer, rows, input_path, batch_size, calibrated)
            handle.writelines(orjson.dumps(row) + b"\n" for _, row in rows)
            count += len(rows)
    return count


def export_model(model_dir: Path, output: Path, force: bool) -> None:
    """Write a ``bt`` model as a plain transformers directory at ``output``
    (:mod:`termwise.models.hf_export`): one logit, the reward of (prompt, response). A GPM
    scores pairs (a skew-symmetric form of two embeddings), which no sequence-classification
    model holds: it is refused."""
    from peft import PeftModel

    from termwise.models.hf_export import ScoringHead, check_export_output, export_scorer

    check_export_output(output, model_dir, force)
    model, tokenizer, manifest = load_preference_model(model_dir)
    if model.kind != "bt":
        raise TermwiseUserError(
            f"is a {model.kind} model: it scores pairs (a skew-symmetric form of two "
            "embeddings), not single responses, so no sequence-classification model holds "
            "it; export a bt model",
            path=model_dir,
        )
    backbone = model.backbone
    if isinstance(backbone, PeftModel):
        backbone = backbone.merge_and_unload()
    separator = "" if tokenizer.sep_token_id is not None else f" (prompt + {PLAIN_SEPARATOR!r})"
    template = "the chat template (a user turn, then an assistant turn)"
    head = ScoringHead(
        norm=model.norm,
        linear=model.out,
        labels=["reward"],
        pooling=model.pooling,
        cap=0.0,
        level=None,
        input_format=(
            template
            if getattr(tokenizer, "chat_template", None)
            else f"a tokenizer pair: (prompt{separator}, response)"
        )
        + f", at most {manifest.max_length} tokens; P(a > b) = sigmoid(reward_a - reward_b) "
        "before termwise's calibration",
    )
    export_scorer(output, backbone, tokenizer, head)
