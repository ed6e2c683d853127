"""Documents rebuilt from corpus passages: each passage's id names its document and the
range of units (sentences ``s``, lines ``u``) it holds, e.g. ``brown-ca01-s007-014``,
``movie_reviews-pos-cv000_29590-s000-006``, ``c4demo-d003-u004-005``.

Passages of one document are put in id order and split back into their units. Two
passages whose ranges overlap are an error; a gap between two ranges splits the document
(never silently joined), and both parts keep the document as their ``group`` so a split by
document keeps them on one side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from termwise.data.jsonl import TEXT_FIELDS, require_text
from termwise.errors import TermwiseUserError

PASSAGE_ID = re.compile(r"^(?P<document>.+)-(?P<unit>[su])(?P<first>\d+)-(?P<last>\d+)$")
PART = re.compile(r"@\d+-\d+$")  # the name suffix of a part of a document split at a gap
ID_FORM = "<document>-s<first>-<last> (sentences) or <document>-u<first>-<last> (lines)"
# Whitespace after a sentence end (optionally closed by a quote or bracket).
SENTENCE_GAP = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+")
# Words after which a full stop rarely ends a sentence.
ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr vs no mt gen gov sen rep col lt capt sgt co inc ltd corp dept "
    "fig vol pp ed etc e.g i.e u.s a.m p.m".split()
)


@dataclass(frozen=True)
class Passage:
    document: str
    first: int
    last: int
    units: list[str]
    line: int
    id: str


def parse_passage(record: dict[str, Any], path: Path, line: int) -> Passage:
    """A text row as a passage, or ``file:line: id: reason``."""
    passage_id = record.get("id")
    if not isinstance(passage_id, str):
        reason = "missing" if passage_id is None else f"expected a string, got {passage_id!r}"
        raise TermwiseUserError(
            f"{reason}: a text row needs a passage id {ID_FORM}",
            path=path,
            line=line,
            field="id",
        )
    match = PASSAGE_ID.match(passage_id)
    if match is None:
        raise TermwiseUserError(
            f"{passage_id!r} does not parse as {ID_FORM}", path=path, line=line, field="id"
        )
    first, last = int(match["first"]), int(match["last"])
    if last < first:
        raise TermwiseUserError(
            f"{passage_id!r}: its range ends ({last}) before it starts ({first})",
            path=path,
            line=line,
            field="id",
        )
    field = next((f for f in TEXT_FIELDS if f in record), TEXT_FIELDS[0])
    text = require_text(record, field, path, line)
    units = split_units(text, match["unit"], last - first + 1)
    return Passage(match["document"], first, last, units, line, passage_id)


def split_units(text: str, unit: str, count: int) -> list[str]:
    """Lines (``u``), or sentences (``s``) cut at the ``count - 1`` likeliest sentence ends
    (fewer when the text has fewer)."""
    if unit == "u":
        return [piece.strip() for piece in text.split("\n") if piece.strip()]
    gaps = list(SENTENCE_GAP.finditer(text))
    ranked = sorted(range(len(gaps)), key=lambda i: -_sentence_end_score(text, gaps[i]))
    chosen = sorted(ranked[: max(0, count - 1)])
    pieces, start = [], 0
    for i in chosen:
        pieces.append(text[start : gaps[i].start()].strip())
        start = gaps[i].end()
    pieces.append(text[start:].strip())
    return [piece for piece in pieces if piece]


def _sentence_end_score(text: str, gap: re.Match[str]) -> int:
    """Higher where a sentence more likely ends: a capital, quote or digit next, and not
    after an abbreviation, an initial or an ellipsis."""
    after = text[gap.end() : gap.end() + 1]
    before = text[: gap.start()].rstrip("\"')]")
    word = before.rsplit(maxsplit=1)[-1].lower() if before.split() else ""
    score = 2 if after[:1].isupper() or after[:1] in "\"'(0123456789" else 0
    if word.rstrip(".!?") in ABBREVIATIONS or len(word.rstrip(".")) == 1:
        score -= 3
    if before.endswith(".."):
        score -= 2
    return score


@dataclass(frozen=True)
class Rebuilt:
    """A run of contiguous passages of one document."""

    name: str
    group: str
    sentences: list[str]


def rebuild_documents(passages: list[Passage], path: Path) -> list[Rebuilt]:
    """Each document's passages in id order; one :class:`Rebuilt` per contiguous run."""
    by_document: dict[str, list[Passage]] = {}
    for passage in passages:
        by_document.setdefault(passage.document, []).append(passage)
    rebuilt: list[Rebuilt] = []
    for document, parts in by_document.items():
        parts.sort(key=lambda p: (p.first, p.line))
        runs: list[list[Passage]] = [[parts[0]]]
        for passage in parts[1:]:
            previous = runs[-1][-1]
            if passage.first <= previous.last:
                raise TermwiseUserError(
                    f"{passage.id!r} overlaps {previous.id!r} (line {previous.line}): "
                    "a document's passages must not share units",
                    path=path,
                    line=passage.line,
                    field="id",
                )
            if passage.first > previous.last + 1:
                runs.append([passage])
            else:
                runs[-1].append(passage)
        group = f"{path.name}:{document}"
        for run in runs:
            name = group if len(runs) == 1 else f"{group}@{run[0].first}-{run[-1].last}"
            rebuilt.append(Rebuilt(name, group, [u for p in run for u in p.units]))
    return rebuilt
