"""What rules see (a :class:`Window` of means, reported metrics) and the :class:`Rule` base."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from termwise.health.findings import Finding, Severity


@dataclass(frozen=True)
class Window:
    """Means over the steps observed since the previous window.

    ``means`` uses the breakdown's flat keys (``"kl.share"``, ``"kl.kl_raw"``, ``"total"``)
    plus extra stats passed to the monitor (``"grad_norm"``, ``"logits.saturation"``).
    """

    index: int
    step: int
    steps: int
    means: Mapping[str, float]
    terms: tuple[str, ...]
    roles: tuple[str, ...]
    nonfinite_steps: int = 0

    def get(self, key: str, default: float = math.nan) -> float:
        return self.means.get(key, default)

    def terms_with_role(self, *roles: str) -> list[str]:
        return [t for t, r in zip(self.terms, self.roles, strict=True) if r in roles]

    def terms_with_stat(self, stat: str) -> list[str]:
        return [t for t in self.terms if f"{t}.{stat}" in self.means]


@dataclass(frozen=True)
class MetricReport:
    """Evaluation metrics reported at one step (``train_loss``, ``val_loss``, ...)."""

    step: int
    metrics: Mapping[str, float]


class Rule:
    """A health rule. Subclasses set ``code`` and override one or both checks.

    Rules may keep state (e.g. a calibrated band); it round-trips through
    :meth:`state_dict` so a resumed run keeps it.
    """

    code: str = ""

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        """``history`` holds earlier windows, oldest first (not ``window`` itself)."""
        return []

    def check_metrics(self, reports: Sequence[MetricReport]) -> list[Finding]:
        """``reports`` holds every metric report so far, the newest last."""
        return []

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None

    def finding(
        self,
        step: int,
        severity: Severity,
        message: str,
        suggestion: str,
        evidence: Mapping[str, Any],
        subject: str = "",
    ) -> Finding:
        rounded = {k: _round(v) for k, v in evidence.items()}
        return Finding(step, severity, self.code, message, suggestion, rounded, subject)


def _round(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.6g}")
    return value


def weight_for_share(weight: float, share: float, target: float) -> float:
    """Weight that would give a term ``target`` share, the other terms unchanged.

    With share s at weight w the other terms sum to ``w*raw*(1-s)/s``; solving
    ``w'*raw / (w'*raw + rest) = target`` gives ``w' = w * target*(1-s) / ((1-target)*s)``.
    """
    return weight * target * (1.0 - share) / ((1.0 - target) * share)


def pct(value: float) -> str:
    return f"{100 * value:.1f} %"
