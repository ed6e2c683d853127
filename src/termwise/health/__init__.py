"""Health monitor: rules that watch an objective's breakdown while it trains.

>>> monitor = HealthMonitor(every=50, run_dir="runs/x", console=Console())
>>> monitor.observe(step, breakdown, {"grad_norm": grad_norm})
"""

from termwise.health.base import MetricReport, Rule, Window
from termwise.health.findings import Finding, FindingGroup, group_findings, read_findings
from termwise.health.monitor import HEALTH_FILE, HealthMonitor
from termwise.health.rules_bayes import PosteriorCollapsed
from termwise.health.rules_fit import FitTestAboveTrain, FitValRising
from termwise.health.rules_signals import LogitsSaturated, NonFinite
from termwise.health.rules_terms import (
    AutoScalePinned,
    Band,
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
        NonFinite(),
        FreeBitsAllFree(),
        FreeBitsBand(calibrate_after=calibrate_after),
        TermNegligible(),
        TermDominant(),
        TermStarved(),
        KLBlocksLearning(),
        AutoScalePinned(),
        PosteriorCollapsed(),
        LogitsSaturated(),
        FitTestAboveTrain(),
        FitValRising(),
    ]


__all__ = [
    "HEALTH_FILE",
    "AutoScalePinned",
    "Band",
    "Finding",
    "FindingGroup",
    "FitTestAboveTrain",
    "FitValRising",
    "FreeBitsAllFree",
    "FreeBitsBand",
    "HealthMonitor",
    "KLBlocksLearning",
    "LogitsSaturated",
    "MetricReport",
    "NonFinite",
    "PosteriorCollapsed",
    "Rule",
    "TermDominant",
    "TermNegligible",
    "TermStarved",
    "Window",
    "default_rules",
    "group_findings",
    "read_findings",
]
