"""Documents of ordered sentences, embedded once (cached), and the windows cut from them.

Cache (``data.cache_dir``): ``embeddings.safetensors`` (every sentence's unit vector, the
document offsets, which documents are OOD) and ``manifest.json`` keyed by the backbone, the
data settings and each file's size and mtime; a stale cache is rebuilt, saying so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

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
from termwise.models.backbone import embed_texts, resolve_backbone
from termwise.recipes.lvm.config import LvmDataConfig
from termwise.recipes.lvm.passages import PART, Passage, parse_passage, rebuild_documents

# Bumped when reading a file gives other documents (2: passages rebuilt from their ids).
READER_VERSION = 2


@dataclass(frozen=True)
class Document:
    name: str
    sentences: list[str]
    group: str = ""  # the source document (parts split at a gap share it); "" = name

    @property
    def source(self) -> str:
        return self.group or self.name


def read_documents(path: Path) -> list[Document]:
    """``{sentences: [...]}`` rows are documents as they are; rows with a text field are
    corpus passages, rebuilt into documents from their ids (:mod:`.passages`)."""
    documents: list[Document] = []
    passages: list[Passage] = []
    for line, record, _ in iter_records(path):
        if "sentences" in record:
            sentences = require_string_list(record, "sentences", path, line)
            documents.append(Document(f"{path.name}:{record.get('id', line)}", sentences))
        elif any(f in record for f in TEXT_FIELDS):
            passages.append(parse_passage(record, path, line))
        else:
            raise TermwiseUserError(
                f"missing: a document needs sentences (a list of strings), or a passage "
                f"needs a text field ({', '.join(TEXT_FIELDS)}) and an id",
                path=path,
                line=line,
                field="sentences",
            )
    rebuilt = rebuild_documents(passages, path) if passages else []
    return documents + [Document(r.name, r.sentences, r.group) for r in rebuilt]


@dataclass
class Corpus:
    """Every sentence vector, by document."""

    vectors: Tensor  # [N, d], unit norm
    offsets: Tensor  # [D + 1]: document i is vectors[offsets[i]:offsets[i + 1]]
    names: list[str]
    ood: Tensor  # [D] bool
    val: Tensor  # [D] bool (in-distribution documents held out)

    def documents(self, split: str) -> list[int]:
        """Indices of the ``train``, ``val`` or ``ood`` documents."""
        if split == "ood":
            return torch.nonzero(self.ood).flatten().tolist()
        chosen = ~self.ood & (self.val if split == "val" else ~self.val)
        return torch.nonzero(chosen).flatten().tolist()

    def group(self, index: int) -> str:
        """The source document of document ``index`` (a part split at a gap names it)."""
        return PART.sub("", self.names[index])

    def document(self, index: int) -> Tensor:
        return self.vectors[int(self.offsets[index]) : int(self.offsets[index + 1])]


def _val_documents(names: list[str], fraction: float) -> set[str]:
    """The first ``round(fraction * n)`` documents in hash order (at least one)."""
    ordered = sorted(names, key=lambda n: hashlib.blake2b(n.encode(), digest_size=8).digest())
    if len(ordered) < 2:
        raise TermwiseUserError(
            f"{len(ordered)} document(s): at least 2 are needed for a split by document",
            field="data.sequences",
        )
    return set(ordered[: min(max(1, round(fraction * len(ordered))), len(ordered) - 1)])


def _key(config: LvmDataConfig) -> str:
    files = [*config.sequences, *config.ood]
    settings = {
        "reader": READER_VERSION,
        "backbone": str(resolve_backbone(config.backbone)),
        "files": [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files],
        "val_fraction": config.val_fraction,
        "max_ood_documents": config.max_ood_documents,
    }
    return hashlib.sha256(orjson.dumps(settings, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def build_corpus(config: LvmDataConfig, console: Console) -> Corpus:
    """Read, split by document, embed every sentence once, and cache."""
    inside = [d for path in config.sequences for d in read_documents(path)]
    outside = [d for path in config.ood for d in read_documents(path)][: config.max_ood_documents]
    prepare_cache_dir(config.cache_dir, "embeddings.safetensors")  # before the long part
    documents = [d for d in inside + outside if d.sentences]
    # Parts of one source document (split at a gap) stay on one side.
    held = _val_documents(sorted({d.source for d in inside if d.sentences}), config.val_fraction)
    texts = [s for d in documents for s in d.sentences]
    path = resolve_backbone(config.backbone)
    console.print(f"embedding {len(texts)} sentences with {path.name}", markup=False)
    vectors = embed_texts(path, texts, config.batch_size, console=console)
    lengths = torch.tensor([len(d.sentences) for d in documents])
    corpus = Corpus(
        vectors,
        torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]),
        [d.name for d in documents],
        torch.tensor([i >= len([d for d in inside if d.sentences]) for i in range(len(documents))]),
        torch.tensor([d.source in held for d in documents]),
    )
    directory = config.cache_dir
    tensors = {"vectors": vectors, "offsets": corpus.offsets, "ood": corpus.ood, "val": corpus.val}
    with atomic_path(directory / "embeddings.safetensors") as partial:
        save_file(tensors, str(partial))
    write_json(directory / "manifest.json", {"key": _key(config), "names": corpus.names})
    print_counts(corpus, console)
    return corpus


def print_counts(corpus: Corpus, console: Console) -> None:
    parts = []
    for split in ("train", "val", "ood"):
        docs = corpus.documents(split)
        sentences = sum(len(corpus.document(i)) for i in docs)
        groups = len({corpus.group(i) for i in docs})
        split_at_gaps = f" in {len(docs)} parts" if groups != len(docs) else ""
        parts.append(f"{split} {groups} documents{split_at_gaps} / {sentences} sentences")
    console.print(f"{'; '.join(parts)}; vectors {tuple(corpus.vectors.shape)}", markup=False)


def load_corpus(config: LvmDataConfig, console: Console) -> Corpus:
    """The cached embeddings when they match ``config``; else build them (saying why)."""
    manifest = config.cache_dir / "manifest.json"
    if manifest.is_file():
        try:
            saved = orjson.loads(manifest.read_bytes())
            if saved.get("key") == _key(config):
                t = load_file(str(config.cache_dir / "embeddings.safetensors"))
                corpus = Corpus(t["vectors"], t["offsets"], saved["names"], t["ood"], t["val"])
                print_counts(corpus, console)
                return corpus
            console.print(f"{config.cache_dir}: embeddings are for other settings; rebuilding")
        except (orjson.JSONDecodeError, OSError, KeyError) as error:
            console.print(f"{config.cache_dir}: unreadable cache ({error}); rebuilding")
    return build_corpus(config, console)


@dataclass
class Windows:
    """Windows as index arrays into ``Corpus.vectors``: ``context`` rows ``[W, C]``, the
    ``target`` (``offset`` after the last context sentence), ``previous`` (the sentence
    just before the target), the document and the last context sentence's position."""

    context: Tensor
    target: Tensor
    previous: Tensor
    document: Tensor
    position: Tensor

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, rows: Tensor) -> Windows:
        return Windows(
            self.context[rows],
            self.target[rows],
            self.previous[rows],
            self.document[rows],
            self.position[rows],
        )


def make_windows(corpus: Corpus, documents: list[int], context: int, offset: int) -> Windows:
    contexts, targets, previous, owner, positions = [], [], [], [], []
    for index in documents:
        start = int(corpus.offsets[index])
        length = int(corpus.offsets[index + 1]) - start
        for t in range(context - 1, length - offset):
            contexts.append(list(range(start + t - context + 1, start + t + 1)))
            targets.append(start + t + offset)
            previous.append(start + t + offset - 1)
            owner.append(index)
            positions.append(t)
    if not targets:
        raise TermwiseUserError(
            f"no document has {context + offset} sentences: no window of context {context} "
            f"and offset {offset}",
            field="data.context",
        )
    return Windows(
        torch.tensor(contexts),
        torch.tensor(targets),
        torch.tensor(previous),
        torch.tensor(owner),
        torch.tensor(positions),
    )
