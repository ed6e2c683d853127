"""The built-in rules a monitor runs when it is given none."""

from __future__ import annotations

from termwise.health.base import Rule
from termwise.health.rules_bayes import PosteriorCollapsed
from termwise.health.rules_direction import MarginByRetreat
from termwise.health.rules_fit import FitAtBaseline, FitTestAboveTrain, FitValRising
from termwise.health.rules_latent import LatentCollapsed
from termwise.health.rules_signals import LogitsSaturated, NonFinite
from termwise.health.rules_terms import (
    AutoScalePinned,
    FreeBitsAllFree,
    FreeBitsBand,
    KLBlocksLearning,
    TermDominant,
    TermNegligible,
    TermStarved,
)


def default_rules(calibrate_after: int | None = None) -> list[Rule]:
    """Every built-in rule with its default thresholds."""
    return [
        LatentCollapsed(),
        NonFinite(),
        FreeBitsAllFree(),
        FreeBitsBand(calibrate_after=calibrate_after),
        TermNegligible(),
        TermDominant(),
        TermStarved(),
        KLBlocksLearning(),
        AutoScalePinned(),
        MarginByRetreat(),
        PosteriorCollapsed(),
        LogitsSaturated(),
        FitTestAboveTrain(),
        FitValRising(),
        FitAtBaseline(),
    ]
