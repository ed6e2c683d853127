"""A saved model behind the server: which kind it is, and the batched calls it answers.

The type comes from the manifest in the directory (``termwise_reward.json``: a ``btrm``
reward model; ``termwise_pref.json``: a ``pref`` preference model). Scoring goes through
the same load APIs as ``termwise btrm score`` and ``termwise pref score``, with the same
settings, so a text scores as it does from the command line (up to float rounding from
sharing a padded batch with other requests' texts, ~1e-6).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from termwise.errors import TermwiseUserError

REWARD_MANIFEST = "termwise_reward.json"
PREFERENCE_MANIFEST = "termwise_pref.json"


@dataclass
class ServedModel:
    """``type`` is ``btrm`` or ``pref``; ``scorer`` the loaded load-API object."""

    type: str
    scorer: Any
    path: Path

    @property
    def heads(self) -> list[str]:
        return list(self.scorer.heads) if self.type == "btrm" else [self.scorer.kind]

    def info(self) -> dict[str, Any]:
        from termwise import __version__

        out: dict[str, Any] = {
            "model_type": self.type,
            "heads": self.heads,
            "version": __version__,
            "path": str(self.path),
        }
        if self.type == "pref":
            out["kind"] = self.scorer.kind
            out["temperature"] = self.scorer.manifest.temperature
            out["power"] = self.scorer.manifest.power
        return out

    # -- the batched calls (run in the model's thread) ---------------------------------------

    def score_texts(self, texts: list[str]) -> list[list[float]]:
        """btrm: every head's score per text."""
        rows: list[list[float]] = self.scorer.score_tensor(texts).tolist()
        return rows

    def pair_scores(self, pairs: list[tuple[str, str, str]]) -> list[list[float]]:
        """pref: the raw scores (one per posterior draw) of a over b per (prompt, a, b)."""
        prompts, a, b = (list(column) for column in zip(*pairs, strict=True))
        rows: list[list[float]] = self.scorer.scores(prompts, a, b).T.tolist()
        return rows

    def rewards(self, items: list[tuple[str, str]]) -> list[float]:
        """pref bt: the scalar reward per (prompt, response)."""
        prompts, responses = (list(column) for column in zip(*items, strict=True))
        values: list[float] = self.scorer.reward(prompts, responses).tolist()
        return values


def load_served(path: Path) -> ServedModel:
    """Load a ``btrm`` or ``pref`` model directory; one clear line for anything else."""
    if not path.is_dir():
        reason = "is a file, expected" if path.exists() else "not found: expected"
        raise TermwiseUserError(f"{reason} a saved model directory", path=path)
    if (path / REWARD_MANIFEST).is_file():
        from termwise.btrm import load as load_reward

        return ServedModel("btrm", load_reward(path), path)
    if (path / PREFERENCE_MANIFEST).is_file():
        from termwise.pref import load as load_preference

        return ServedModel("pref", load_preference(path), path)
    raise TermwiseUserError(
        f"not a servable model: no {REWARD_MANIFEST} (btrm) or {PREFERENCE_MANIFEST} (pref)",
        path=path,
    )
