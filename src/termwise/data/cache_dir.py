"""Cache directories (``data.cache_dir``): termwise writes into one only if it made it.

A cache is a folder termwise created, marked with ``.termwise-cache``; a folder of the
user's that happens to hold a ``manifest.json`` is never written into. Caches written before
the marker existed are recognised by their own files (a manifest with a ``key`` beside the
tensors) and marked.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from termwise.errors import TermwiseUserError

CACHE_MARKER = ".termwise-cache"


def _old_cache(directory: Path, tensors: str) -> bool:
    try:
        manifest = orjson.loads((directory / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    return isinstance(manifest, dict) and "key" in manifest and (directory / tensors).is_file()


def prepare_cache_dir(directory: Path, tensors: str, field: str = "data.cache_dir") -> None:
    """Check (before any work) that ``directory`` can hold termwise's cache, create and
    mark it; ``tensors`` names the cache's main file (how an unmarked old cache is known)."""
    if directory.exists() and not directory.is_dir():
        raise TermwiseUserError(
            "is a file, expected a cache directory", path=directory, field=field
        )
    if directory.is_symlink():
        raise TermwiseUserError(
            "is a symbolic link; give a real folder", path=directory, field=field
        )
    marker = directory / CACHE_MARKER
    if directory.is_dir() and not marker.is_file():
        if any(directory.iterdir()) and not _old_cache(directory, tensors):
            raise TermwiseUserError(
                "not empty and not a termwise cache; choose a new or empty folder",
                path=directory,
                field=field,
            )
    directory.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        marker.write_bytes(b"")
