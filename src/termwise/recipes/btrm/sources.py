"""Text sources of the reward model: JSONL rows with tiers, field detection, bad records."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from termwise.data.jsonl import TEXT_FIELDS, iter_records, require_text
from termwise.errors import TermwiseUserError

SINGLE_QUOTE = "single_quote"
SINGLE_QUOTE_MIN_WORDS = 4


@dataclass(frozen=True)
class Record:
    """One text. ``group``: the document it was cut from, held out as a whole (the
    ``group_field`` value; else the row's own id, or for a derived single line its row's)."""

    text: str
    tier: str | None
    row_id: str
    group: str


@dataclass
class SourceReport:
    """What reading one source found: rows per tier, the text field, bad records."""

    path: Path
    text_field: str | None = None
    field_was_auto: bool = False
    rows: int = 0
    kept: Counter[str] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)


def _choose_field(row: dict[str, Any], requested: str) -> str | None:
    if requested != "auto":
        return requested
    return next((name for name in TEXT_FIELDS if name in row), None)


def read_source(
    path: Path,
    text_field: str = "auto",
    tiers: list[str] | None = None,
    on_bad_record: str = "error",
    max_rows: int | None = None,
    group_field: str | None = None,
) -> tuple[list[Record], SourceReport]:
    """Read ``path`` line by line. A bad record (invalid JSON, not an object, missing or
    empty text, wrong type) raises ``file:line: field: reason``, or with
    ``on_bad_record="skip"`` is counted in the report and skipped.

    ``tiers`` keeps rows whose ``tier`` is listed; the derived tier ``single_quote`` yields
    each line (of at least 4 words) of the ``flattened`` rows as its own record.
    ``group_field`` names the field saying which document a row was cut from (a string or
    an integer; a bad record when missing).
    """
    report = SourceReport(path, field_was_auto=text_field == "auto")
    wanted = set(tiers) if tiers is not None else None
    split_dialogue = wanted is not None and SINGLE_QUOTE in wanted
    records: list[Record] = []
    skip = on_bad_record == "skip"
    invalid = 0  # bad records found here; the rest of report.bad are unparsable lines
    for number, row, _ in iter_records(path, report.bad if skip else None):
        if max_rows is not None and report.rows + len(report.bad) - invalid >= max_rows:
            break
        report.rows += 1
        try:
            if report.text_field is None:
                report.text_field = _choose_field(row, text_field)
                if report.text_field is None:
                    raise TermwiseUserError(
                        f"no text field (tried {', '.join(TEXT_FIELDS)}); set text_field",
                        path=path,
                        line=number,
                        field="text_field",
                    )
            text = require_text(row, report.text_field, path, number)
            tier = _tier(row, path, number)
            group = _group(row, group_field, path, number)
        except TermwiseUserError as error:
            if not skip or error.field == "text_field":
                raise
            report.bad.append(str(error))
            invalid += 1
            continue
        row_id = str(row.get("id", f"{path.name}:{number}"))
        group = row_id if group is None else group
        if split_dialogue and tier == "flattened":
            for index, line in enumerate(text.split("\n")):
                if len(line.split()) >= SINGLE_QUOTE_MIN_WORDS:
                    line_id = f"{row_id}#l{index}"
                    records.append(Record(line.strip(), SINGLE_QUOTE, line_id, group))
                    report.kept[SINGLE_QUOTE] += 1
        if wanted is None or tier in wanted:
            records.append(Record(text, tier, row_id, group))
            report.kept[tier or "(none)"] += 1
    report.rows += len(report.bad) - invalid
    return records, report


def _group(row: dict[str, Any], name: str | None, path: Path, number: int) -> str | None:
    if name is None:
        return None
    if name not in row:
        raise TermwiseUserError(
            "missing (the source's group_field)", path=path, line=number, field=name
        )
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TermwiseUserError(
            f"expected a string or an integer, got {type(value).__name__}",
            path=path,
            line=number,
            field=name,
        )
    return str(value)


def _tier(row: dict[str, Any], path: Path, number: int) -> str | None:
    tier = row.get("tier")
    if tier is not None and not isinstance(tier, str):
        raise TermwiseUserError(
            f"expected a string, got {type(tier).__name__}", path=path, line=number, field="tier"
        )
    return tier
