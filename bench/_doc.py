"""Writing a benchmark's section into docs/benchmarks.md without touching the others."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def update_section(mark: str, section: str) -> None:
    """Replace the text between two ``mark`` lines (``section`` includes them), or append."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    if mark in text:
        head, _, rest = text.partition(mark)
        text = head + section + rest.partition(mark)[2]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOC.write_text(text, encoding="utf-8")


def publish(mark: str, lines: list[str], write: bool) -> None:
    """Print a benchmark's section (framed by ``mark``) and, with ``write``, store it."""
    section = "\n".join([mark, *lines, mark])
    print(section)
    if write:
        update_section(mark, section)
