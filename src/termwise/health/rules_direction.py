"""Rules on a directional margin: a margin won by moving away, not by predicting."""

from __future__ import annotations

from collections.abc import Sequence

from termwise.health.base import MetricReport, Rule, Window
from termwise.health.findings import Finding

STATS = ("gap", "pos", "neg")  # the directional term's stats the window rule compares
ADVICE = (
    "make the objective predict rather than retreat: add the contrastive term "
    "(objective.contrastive, the context sentences as negatives) or lower the directional "
    "term's target_frac; judge the change by R@5 and MRR against copy-last and ridge"
)


class MarginByRetreat(Rule):
    """A directional margin ``cos(pred, next) - cos(pred, prev)`` that grows because the
    prediction leaves the previous vector, not because it nears the next one.

    In training windows: over the last ``lookback`` windows a term's ``gap`` rose by at
    least ``min_rise`` while its ``pos`` (cos to the next vector) rose by less than
    ``share`` of that and its ``neg`` fell. At an evaluation (metrics ``margin``, ``peak``
    and ``target_offset`` of the offset sweep): the margin is positive while the prediction
    is still closest to a context sentence (the sweep peaks at an offset <= 0).
    """

    code = "dir.retreat"

    def __init__(self, lookback: int = 5, min_rise: float = 0.01, share: float = 0.25) -> None:
        self.lookback = lookback
        self.min_rise = min_rise
        self.share = share

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        if len(history) < self.lookback:
            return []
        then = history[-self.lookback]
        found = []
        for term in window.terms_with_stat("gap"):
            rise = {s: window.get(f"{term}.{s}") - then.get(f"{term}.{s}") for s in STATS}
            if not (
                rise["gap"] >= self.min_rise
                and rise["pos"] < self.share * rise["gap"]
                and rise["neg"] < 0
            ):
                continue
            found.append(
                self.finding(
                    window.step,
                    "warning",
                    f"{term}: the margin grew by {rise['gap']:+.3f} since step {then.step} while "
                    f"cos to the next vector moved {rise['pos']:+.3f} and cos to the previous "
                    f"{rise['neg']:+.3f}: won by moving away from the context, not toward the "
                    "next vector",
                    ADVICE,
                    {f"{s}_rise": v for s, v in rise.items()} | {"since_step": then.step},
                    term,
                )
            )
        return found

    def check_metrics(self, reports: Sequence[MetricReport]) -> list[Finding]:
        last = reports[-1] if reports else None
        if last is None or not {"margin", "peak", "target_offset"} <= set(last.metrics):
            return []
        margin, peak = last.metrics["margin"], int(last.metrics["peak"])
        if not (margin > 0 and peak <= 0):
            return []
        return [
            self.finding(
                last.step,
                "warning",
                f"margin(+1) {margin:+.4f} is positive, but the offset sweep peaks at {peak:+d} "
                f"(a context sentence), not at the target ({int(last.metrics['target_offset']):+d})"
                ": the prediction sits nearer the context than the next sentence",
                ADVICE,
                {"margin": margin, "peak": peak},
                "offset_sweep",
            )
        ]
