"""Writing a benchmark's section into docs/*.md without touching the other sections."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
DOC = DOCS / "benchmarks.md"


def update_section(mark: str, section: str, doc: Path = DOC) -> None:
    """Replace the text between two ``mark`` lines (``section`` includes them), or append."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    if mark in text:
        head, _, rest = text.partition(mark)
        text = head + section + rest.partition(mark)[2]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    doc.write_text(text, encoding="utf-8")


def publish(mark: str, lines: list[str], write: bool, doc: Path = DOC) -> None:
    """Print a benchmark's section (framed by ``mark``) and, with ``write``, store it."""
    section = "\n".join([mark, *lines, mark])
    print(section)
    if write:
        update_section(mark, section, doc)
