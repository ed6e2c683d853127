"""Rules on a latent bottleneck's evaluation metrics: posterior collapse."""

from __future__ import annotations

from collections.abc import Sequence

from termwise.health.base import MetricReport, Rule
from termwise.health.findings import Finding


class LatentCollapsed(Rule):
    """No active latent unit, or mutual information I(x; z) under ``mi_threshold`` nats,
    in each of the last ``window`` evaluations: the posterior has collapsed onto the
    prior and the decoder ignores z (reads ``{prefix}active_units`` and ``{prefix}mi``)."""

    code = "latent.collapsed"

    def __init__(self, window: int = 2, mi_threshold: float = 0.05, prefix: str = "val_") -> None:
        self.window = window
        self.mi_threshold = mi_threshold
        self.prefix = prefix

    def check_metrics(self, reports: Sequence[MetricReport]) -> list[Finding]:
        units, mi = f"{self.prefix}active_units", f"{self.prefix}mi"
        recent = [r for r in reports if units in r.metrics and mi in r.metrics][-self.window :]
        if len(recent) < self.window:
            return []
        if not all(r.metrics[units] == 0 or r.metrics[mi] < self.mi_threshold for r in recent):
            return []
        last = recent[-1].metrics
        return [
            self.finding(
                recent[-1].step,
                "warning",
                f"posterior collapse: {int(last[units])} active units and I(x; z) "
                f"{last[mi]:.3g} nats in each of the last {self.window} evaluations: the "
                "decoder ignores the latent",
                "give the KL free bits (kl.free_bits: auto), anneal the KL weight from 0 over "
                "more epochs, or weaken the decoder (model.word_dropout)",
                {
                    "active_units": last[units],
                    "mi": last[mi],
                    "mi_threshold": self.mi_threshold,
                    "window": self.window,
                },
                "latent",
            )
        ]
