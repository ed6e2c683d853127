"""Sentences for the bottleneck: reading, splitting by document, a word vocabulary, and the
teacher targets, built once by ``termwise vae build-data`` and cached.

Cache (``data.cache_dir``): ``vocab.json``, ``data.safetensors`` (token ids, lengths, split,
labels, teacher targets) and ``manifest.json`` whose ``key`` hashes everything the cache
depends on (the data and teacher settings, each source file's size and mtime); a stale
cache is rebuilt, saying so.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import torch
from rich.console import Console
from safetensors.torch import load_file, save_file
from torch import Tensor

from termwise.data.cache_dir import prepare_cache_dir
from termwise.data.jsonl import (
    TEXT_FIELDS,
    atomic_path,
    iter_records,
    require_string_list,
    write_json,
)
from termwise.errors import TermwiseUserError
from termwise.recipes.vae.config import VaeConfig

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]
TOKEN = re.compile(r"<unk>|[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
SPLITS = ("train", "val", "test")


def tokenize(text: str) -> list[str]:
    """Lower-cased words, numbers and punctuation marks (wikitext's ``<unk>`` kept whole)."""
    return TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Example:
    text: str
    document: str
    label: str


def _text_of(record: dict[str, Any], path: Path, line: int) -> str:
    field = next((f for f in TEXT_FIELDS if isinstance(record.get(f), str)), None)
    if field is None:
        raise TermwiseUserError(
            f"no text field (tried {', '.join(TEXT_FIELDS)})", path=path, line=line
        )
    return str(record[field])


def read_examples(config: VaeConfig) -> list[Example]:
    """Every example, in file order: sentences of the documents in ``sequences``; for
    ``corpora`` the sentences of each row (task reconstruct) or the row itself (classify)."""
    examples: list[Example] = []
    for path in config.data.sequences:
        for line, record, _ in iter_records(path):
            sentences = require_string_list(record, "sentences", path, line)
            document = f"{path.name}:{record.get('id', line)}"
            examples += [Example(s, document, path.stem) for s in sentences]
    for path in config.data.corpora:
        for line, record, _ in iter_records(path):
            text = _text_of(record, path, line)
            document = f"{path.name}:{record.get('source', record.get('id', line))}"
            pieces = [text] if config.task == "classify" else SENTENCE_END.split(text)
            examples += [Example(p.strip(), document, path.stem) for p in pieces if p.strip()]
    return examples[: config.data.max_examples]


def document_splits(documents: list[str], val: float, test: float) -> dict[str, int]:
    """0 train, 1 val, 2 test per document, so a document's sentences stay together: the
    documents in hash order, the first ``round(test * n)`` (at least one) to test, the
    next ``round(val * n)`` (at least one) to val. Needs three documents or more."""
    unique = sorted(set(documents), key=_unit_hash)
    if len(unique) < 3:
        raise TermwiseUserError(
            f"{len(unique)} document(s) cannot be split into train, val and test by document; "
            "add sources",
            field="data",
        )
    n_test = min(max(1, round(test * len(unique))), len(unique) - 2)
    n_val = min(max(1, round(val * len(unique))), len(unique) - 1 - n_test)
    return {d: 2 if i < n_test else 1 if i < n_test + n_val else 0 for i, d in enumerate(unique)}


def _unit_hash(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")


@dataclass
class Vocabulary:
    words: list[str]

    def __post_init__(self) -> None:
        self.index = {w: i for i, w in enumerate(self.words)}

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.index.get(t, UNK) for t in tokens]

    def decode(self, ids: list[int]) -> str:
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.words[i] if i < len(self.words) else "<unk>")
        return " ".join(out)

    @classmethod
    def build(cls, token_lists: list[list[str]], max_size: int, min_count: int) -> Vocabulary:
        counts = Counter(t for tokens in token_lists for t in tokens)
        counts.pop("<unk>", None)
        common = [w for w, n in counts.most_common(max_size) if n >= min_count]
        return cls(SPECIALS + common)


@dataclass
class VaeData:
    """Every example as tensors, and what the model needs to know about them."""

    vocab: Vocabulary
    ids: Tensor  # [N, max_tokens] int64, PAD after the sentence
    lengths: Tensor  # [N]
    split: Tensor  # [N] 0 train, 1 val, 2 test
    labels: Tensor  # [N] class index (task classify), else 0
    teacher: Tensor  # [N, T] teacher target, or [N, 0]
    label_names: list[str]

    def rows(self, split: str) -> Tensor:
        return torch.nonzero(self.split == SPLITS.index(split)).flatten()


def _cache_key(config: VaeConfig) -> str:
    files = [*config.data.sequences, *config.data.corpora]
    stamp = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    settings = {
        "task": config.task,
        "data": config.data.model_dump(mode="json", exclude={"cache_dir"}),
        "teacher": config.teacher.model_dump(mode="json"),
        "files": stamp,
    }
    return hashlib.sha256(orjson.dumps(settings, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def build_data(config: VaeConfig, console: Console) -> VaeData:
    """Read, split, tokenise, compute the teacher targets and write the cache."""
    prepare_cache_dir(config.data.cache_dir, "data.safetensors")
    examples = read_examples(config)
    if not examples:
        files = ", ".join(str(p) for p in [*config.data.sequences, *config.data.corpora])
        raise TermwiseUserError(f"no sentences in {files}", field="data")
    total = len(examples)
    cfg = config.data
    tokens = [tokenize(e.text)[: cfg.max_tokens] for e in examples]
    kept = [i for i, t in enumerate(tokens) if len(t) >= cfg.min_tokens]
    if not kept:
        raise TermwiseUserError("no example has min_tokens tokens", field="data.min_tokens")
    examples, tokens = [examples[i] for i in kept], [tokens[i] for i in kept]
    splits = document_splits([e.document for e in examples], cfg.val_fraction, cfg.test_fraction)
    split = torch.tensor([splits[e.document] for e in examples])
    train = (split == 0).nonzero().flatten().tolist()
    vocab = Vocabulary.build([tokens[i] for i in train], cfg.max_vocab, cfg.min_count)
    ids = torch.zeros(len(tokens), cfg.max_tokens, dtype=torch.long)
    for row, sentence in enumerate(tokens):
        ids[row, : len(sentence)] = torch.tensor(vocab.encode(sentence))
    label_names = sorted({e.label for e in examples})
    labels = torch.tensor([label_names.index(e.label) for e in examples])
    data = VaeData(
        vocab,
        ids,
        torch.tensor([len(t) for t in tokens]),
        split,
        labels,
        torch.zeros(len(examples), 0),
        label_names,
    )
    if config.teacher.enabled:
        from termwise.recipes.vae.teacher import teacher_targets

        texts = [e.text for e in examples]
        data.teacher = teacher_targets(config, texts, data.rows("train"), labels, console)
    _write_cache(config, data, dropped=total - len(kept))
    _print_counts(data, total - len(kept), console)
    return data


def _print_counts(data: VaeData, dropped: int, console: Console) -> None:
    counts = ", ".join(f"{name} {len(data.rows(name))}" for name in SPLITS)
    console.print(
        f"{len(data.ids)} examples ({counts}; {dropped} shorter than min_tokens left out); "
        f"vocabulary {len(data.vocab.words)} words; "
        f"{(data.ids == UNK).float().mean().item():.1%} <unk> tokens; teacher "
        f"{'dims ' + str(data.teacher.shape[1]) if data.teacher.shape[1] else 'off'}",
        markup=False,
    )


def _write_cache(config: VaeConfig, data: VaeData, dropped: int) -> None:
    directory = config.data.cache_dir
    tensors = {
        "ids": data.ids,
        "lengths": data.lengths,
        "split": data.split,
        "labels": data.labels,
        "teacher": data.teacher.contiguous(),
    }
    with atomic_path(directory / "data.safetensors") as partial:
        save_file(tensors, str(partial))
    write_json(directory / "vocab.json", data.vocab.words)
    write_json(
        directory / "manifest.json",
        {"key": _cache_key(config), "label_names": data.label_names, "dropped": dropped},
    )


def load_data(config: VaeConfig, console: Console) -> VaeData:
    """The cached data when it matches ``config``; else build it (and say why)."""
    directory = config.data.cache_dir
    manifest_path = directory / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest = orjson.loads(manifest_path.read_bytes())
            if manifest.get("key") == _cache_key(config):
                tensors = load_file(str(directory / "data.safetensors"))
                words = orjson.loads((directory / "vocab.json").read_bytes())
                data = VaeData(
                    Vocabulary(words),
                    tensors["ids"],
                    tensors["lengths"],
                    tensors["split"],
                    tensors["labels"],
                    tensors["teacher"],
                    list(manifest["label_names"]),
                )
                _print_counts(data, int(manifest["dropped"]), console)
                return data
            console.print(f"{directory}: the cache is for other settings; rebuilding")
        except (orjson.JSONDecodeError, OSError, KeyError) as error:
            console.print(f"{directory}: unreadable cache ({error}); rebuilding", markup=False)
    return build_data(config, console)


def encode_texts(vocab: Vocabulary, texts: list[str], max_tokens: int) -> tuple[Tensor, Tensor]:
    """Token ids and lengths of new texts (evaluation, sampling), as the cache has them."""
    tokens = [tokenize(t)[:max_tokens] or ["<unk>"] for t in texts]
    ids = torch.zeros(len(tokens), max_tokens, dtype=torch.long)
    for row, sentence in enumerate(tokens):
        ids[row, : len(sentence)] = torch.tensor(vocab.encode(sentence))
    return ids, torch.tensor([len(t) for t in tokens])
