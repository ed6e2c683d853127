"""Rules on training signals: saturated logits, non-finite values."""

from __future__ import annotations

import math
from collections.abc import Sequence

from termwise.health.base import Rule, Window, pct
from termwise.health.findings import Finding


class LogitsSaturated(Rule):
    """Share of capped scores with ``|score| > 0.9 * cap`` above ``threshold``.

    Reads every window key ending in ``saturation`` (e.g. ``logits.saturation``, computed by
    :func:`termwise.terms.saturation_fraction` and passed to the monitor as a stat).
    """

    code = "logits.saturated"

    def __init__(self, threshold: float = 0.2) -> None:
        self.threshold = threshold

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        found = []
        for key, value in window.means.items():
            if not key.endswith("saturation") or not value > self.threshold:
                continue
            found.append(
                self.finding(
                    window.step,
                    "warning",
                    f"{key}: {pct(value)} of scores are within 10 % of the logit cap, where tanh "
                    "has almost no gradient",
                    "raise the logit cap, keep scores near 1 with the log-square regulariser, or "
                    "lower the learning rate",
                    {"saturated_fraction": value, "threshold": self.threshold},
                    key,
                )
            )
        return found


class NonFinite(Rule):
    """NaN or Inf in a term, the total or the gradient norm, or steps skipped for it."""

    code = "nonfinite"

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        bad = sorted(k for k, v in window.means.items() if not math.isfinite(v))
        if not bad and window.nonfinite_steps == 0:
            return []
        where = ", ".join(bad[:6]) + (" ..." if len(bad) > 6 else "")
        detail = f"non-finite values in {where}" if bad else "non-finite loss or gradient"
        return [
            self.finding(
                window.step,
                "error",
                f"{detail}; {window.nonfinite_steps} step(s) skipped in this window",
                "lower the learning rate, enable gradient clipping, train in fp32, and check the "
                "batch at that step for extreme or empty inputs",
                {"nonfinite_steps": window.nonfinite_steps, "keys": bad[:20]},
            )
        ]
