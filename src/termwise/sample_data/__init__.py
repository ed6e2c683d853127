"""Small samples of ``../shared/data`` shipped with the package (sources and licences in
README.md here), so the default configs and ``make run`` work from any directory."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def sample_path(*parts: str) -> Path:
    """A bundled sample, e.g. ``sample_path("corpora")``."""
    return ROOT.joinpath(*parts)
