"""Scoring with a trained multi-head reward model, from Python or a JSONL file.

>>> scorer = termwise.btrm.load("runs/btrm/model")
>>> scorer.score(["Mr. Smith said the council would meet on Tuesday."])
[{'fiction': -1.9, 'news': 0.97, ...}]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import torch
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor

from termwise.data.batching import map_batches, pad
from termwise.data.jsonl import (
    TEXT_FIELDS,
    atomic_write,
    check_output,
    check_readable,
    record_chunks,
    require_text,
)
from termwise.errors import TermwiseUserError
from termwise.recipes.btrm.model import MultiHeadRewardModel, RewardManifest, load_reward_model

__all__ = ["SCORE_TOKENS", "RewardScorer", "encode", "load", "merge_lora", "score_file"]

TEXT_LINE = "text:"


def prompt_prefix(meta_prompt: str) -> str:
    """What precedes every text: the meta-prompt, then a ``text:`` line."""
    return f"{meta_prompt}\n{TEXT_LINE}"


def encode(
    tokenizer: Any, meta_prompt: str, texts: Sequence[str], max_length: int
) -> list[list[int]]:
    """Token ids of ``meta-prompt + text:`` followed by each text. Truncation cuts the text
    only, never the meta-prompt (the prefix is the first segment of a pair)."""
    prefix = prompt_prefix(meta_prompt)
    encoded = tokenizer(
        [prefix] * len(texts), list(texts), truncation="only_second", max_length=max_length
    )
    return [list(ids) for ids in encoded["input_ids"]]


# Padded tokens per scoring batch. On CPU a smaller batch keeps a layer's activations in
# cache: MiniLM at 256 tokens scores ~15 % faster in batches of 16 than of 64 (bench/multihead.py).
SCORE_TOKENS = 4096


@dataclass
class RewardScorer:
    """Scores texts with a loaded model. ``bf16`` runs the backbone under bfloat16
    autocast: about twice as fast on CPUs with AMX/AVX512-BF16, scores within ~1e-2 of
    float32 (see docs/benchmarks.md); off by default."""

    model: MultiHeadRewardModel
    tokenizer: Any
    manifest: RewardManifest
    bf16: bool = False

    @property
    def heads(self) -> list[str]:
        return list(self.model.head_names)

    @torch.inference_mode()
    def score_tensor(
        self, texts: Sequence[str], batch_size: int = 64, max_tokens: int | None = SCORE_TOKENS
    ) -> Tensor:
        """Scores ``[len(texts), heads]`` in input order, computed in length-sorted batches
        of at most ``batch_size`` texts and ``max_tokens`` padded tokens."""
        ids = encode(self.tokenizer, self.manifest.meta_prompt, texts, self.manifest.max_length)
        if not ids:
            return torch.empty(0, len(self.heads))
        pad_id = self.tokenizer.pad_token_id or 0
        bags = self.model.bags(list(texts))
        return score_ids(self.model, ids, pad_id, batch_size, max_tokens, self.bf16, bags)

    def score(
        self, texts: Sequence[str], batch_size: int = 64, max_tokens: int | None = SCORE_TOKENS
    ) -> list[dict[str, float]]:
        scores = self.score_tensor(texts, batch_size, max_tokens).tolist()
        return [dict(zip(self.heads, row, strict=True)) for row in scores]


def score_ids(
    model: MultiHeadRewardModel,
    ids: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int = 64,
    max_tokens: int | None = SCORE_TOKENS,
    bf16: bool = False,
    bags: Sequence[list[int]] | None = None,
    jointly_trained: bool = False,
) -> Tensor:
    """Scores ``[len(ids), heads]`` (float32, input order) of already encoded texts;
    ``bags``: their n-gram bags, for a model with a lexical branch; ``jointly_trained``:
    see :meth:`MultiHeadRewardModel.forward`."""
    device = next(model.parameters()).device

    def run(rows: list[int]) -> Tensor:
        input_ids, mask = pad([ids[i] for i in rows], pad_id)
        batch_bags = None if bags is None else [bags[i] for i in rows]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            scores = model.score_batch(
                input_ids.to(device), mask.to(device), batch_bags, jointly_trained
            )
            return scores.float()

    with torch.inference_mode():
        return map_batches([len(row) for row in ids], run, batch_size, max_tokens)


def merge_lora(model: MultiHeadRewardModel) -> MultiHeadRewardModel:
    """Fold LoRA adapters into the backbone weights (in place) for scoring: the same
    function with one matmul per projection instead of three, so it scores faster; the
    scores agree with the unmerged model to float rounding (~1e-6)."""
    from peft import PeftModel

    if isinstance(model.backbone, PeftModel):
        model.backbone = model.backbone.merge_and_unload()
    return model


def load(
    path: str | Path, merge: bool = True, bf16: bool = False, int8: bool = False
) -> RewardScorer:
    """A saved reward model directory (``termwise btrm train`` writes ``OUT/model``).
    ``merge`` folds LoRA adapters into the weights (:func:`merge_lora`); ``merge=False``
    keeps the modules exactly as trained (bit-identical scores). ``bf16``: see
    :class:`RewardScorer`. ``int8``: :func:`quantize_backbone` (CPU; implies ``merge``)."""
    if bf16 and int8:
        raise TermwiseUserError("give --bf16 or --int8, not both")
    model, tokenizer, manifest = load_reward_model(Path(path))
    if merge or int8:
        model = merge_lora(model)
    if int8:
        quantize_backbone(model)
    return RewardScorer(model, tokenizer, manifest, bf16)


def quantize_backbone(model: MultiHeadRewardModel) -> MultiHeadRewardModel:
    """The backbone's Linear layers as dynamic int8 (``torch.ao``: int8 weights, activations
    quantized per batch), in place: the CPU fast path for a large corpus. Down-projections
    (more inputs than outputs: the FFN's second layer, whose wide input quantizes worst)
    get one scale per output channel, the other layers one per tensor (faster); the heads
    stay in float32. ``docs/benchmarks.md`` has the speed-up, the largest score change and
    the held-out AUC change."""
    import warnings

    from torch import nn
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    if next(model.parameters()).device.type != "cpu":
        raise TermwiseUserError("--int8 is a CPU path; on a GPU use --bf16")
    model.eval()
    spec = {
        name: per_channel_dynamic_qconfig
        if module.in_features > module.out_features
        else default_dynamic_qconfig
        for name, module in model.backbone.named_modules()
        if isinstance(module, nn.Linear)
    }
    with warnings.catch_warnings():  # torch.ao's notice that the API moves to torchao
        warnings.simplefilter("ignore")
        model.backbone = quantize_dynamic(model.backbone, spec, dtype=torch.qint8)
    return model


def score_file(
    model_dir: Path,
    input_path: Path,
    output: Path,
    text_field: str,
    batch_size: int,
    chunk: int,
    console: Console,
    bf16: bool = False,
    max_tokens: int | None = SCORE_TOKENS,
    force: bool = False,
    int8: bool = False,
) -> int:
    """Score every record of ``input_path`` into ``output`` (order preserved); returns the
    number of records. Texts are batched by length within each chunk."""
    check_readable(input_path, "input file")
    from termwise.trainer.run_dir import model_inputs

    check_output(output, input_path, *model_inputs(model_dir), force=force, owner="btrm score")
    scorer = load(model_dir, bf16=bf16, int8=int8)
    field = None if text_field == "auto" else text_field
    written = 0
    columns = (TextColumn("scoring"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with (
        atomic_write(output, owner="btrm score") as sink,
        Progress(*columns, console=console) as progress,
    ):
        task = progress.add_task("score", total=input_path.stat().st_size)
        for records, consumed in record_chunks(input_path, chunk):
            if field is None:
                first = records[0][1]
                field = next((f for f in TEXT_FIELDS if f in first), None)
                if field is None:
                    raise TermwiseUserError(
                        f"no text field (tried {', '.join(TEXT_FIELDS)}); pass --text-field",
                        path=input_path,
                        line=records[0][0],
                    )
            texts = [require_text(r, field, input_path, line) for line, r in records]
            scores = scorer.score_tensor(texts, batch_size, max_tokens).tolist()
            for (_, record), row in zip(records, scores, strict=True):
                record["scores"] = dict(zip(scorer.heads, row, strict=True))
                sink.write(orjson.dumps(record) + b"\n")
            written += len(records)
            progress.update(task, completed=consumed)
    return written


def export_model(model_dir: Path, output: Path, neural_only: bool, force: bool) -> list[str]:
    """Write ``model_dir`` as a plain transformers directory at ``output``
    (:mod:`termwise.models.hf_export`); what a user should know about it, line by line.
    The lexical branch and the tf-idf regression read n-gram bags, which no transformers
    model takes: a model with them is refused unless ``neural_only``."""
    from termwise.models.hf_export import ScoringHead, check_export_output, export_scorer

    check_export_output(output, model_dir, force)
    model, tokenizer, manifest = load_reward_model(model_dir)
    notes = []
    level = model.level
    if model.heads.lexical is not None:
        if not neural_only:
            raise TermwiseUserError(
                "has a lexical branch (and its tf-idf regression), which reads n-gram bags no "
                "transformers model takes: train with lexical.enabled: false, or pass "
                "--neural-only to export the neural part alone (its scores differ)",
                path=model_dir,
            )
        level = None  # fitted on the full scores, not on the neural part's
        notes.append(
            "exported the neural part alone: no lexical branch, no tf-idf regression and no "
            "score level, so its scores differ from termwise btrm score's"
        )
    merge_lora(model)
    head = ScoringHead(
        norm=model.heads.norm,
        linear=model.heads.linear,
        labels=model.head_names,
        pooling=model.pooling,
        cap=model.logit_cap,
        level=level,
        input_format=(
            f"a tokenizer pair: ({prompt_prefix(manifest.meta_prompt)!r}, text), truncated "
            f"to {manifest.max_length} tokens, only the text cut"
        ),
    )
    export_scorer(output, model.backbone, tokenizer, head)
    return notes
