"""Health monitor: rules that watch an objective's breakdown while it trains.

>>> monitor = HealthMonitor(every=50, run_dir="runs/x", console=Console())
>>> monitor.observe(step, breakdown, {"grad_norm": grad_norm})

Names load on first use (``termwise health explain`` reads findings without torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from termwise._lazy import lazy_exports

if TYPE_CHECKING:
    from termwise.health.base import MetricReport, Rule, Window
    from termwise.health.defaults import default_rules
    from termwise.health.findings import (
        HEALTH_FILE,
        Finding,
        FindingGroup,
        group_findings,
        read_findings,
    )
    from termwise.health.monitor import HealthMonitor
    from termwise.health.rules_bayes import PosteriorCollapsed
    from termwise.health.rules_direction import MarginByRetreat
    from termwise.health.rules_fit import FitAtBaseline, FitTestAboveTrain, FitValRising
    from termwise.health.rules_latent import LatentCollapsed
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


__all__ = [
    "HEALTH_FILE",
    "AutoScalePinned",
    "Band",
    "Finding",
    "FindingGroup",
    "FitAtBaseline",
    "FitTestAboveTrain",
    "FitValRising",
    "FreeBitsAllFree",
    "FreeBitsBand",
    "HealthMonitor",
    "KLBlocksLearning",
    "LatentCollapsed",
    "LogitsSaturated",
    "MarginByRetreat",
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
_MODULES = {
    "MetricReport": "termwise.health.base",
    "Rule": "termwise.health.base",
    "Window": "termwise.health.base",
    "Finding": "termwise.health.findings",
    "FindingGroup": "termwise.health.findings",
    "group_findings": "termwise.health.findings",
    "read_findings": "termwise.health.findings",
    "HEALTH_FILE": "termwise.health.findings",
    "HealthMonitor": "termwise.health.monitor",
    "PosteriorCollapsed": "termwise.health.rules_bayes",
    "MarginByRetreat": "termwise.health.rules_direction",
    "FitAtBaseline": "termwise.health.rules_fit",
    "FitTestAboveTrain": "termwise.health.rules_fit",
    "FitValRising": "termwise.health.rules_fit",
    "LatentCollapsed": "termwise.health.rules_latent",
    "LogitsSaturated": "termwise.health.rules_signals",
    "NonFinite": "termwise.health.rules_signals",
    "AutoScalePinned": "termwise.health.rules_terms",
    "Band": "termwise.health.rules_terms",
    "FreeBitsAllFree": "termwise.health.rules_terms",
    "FreeBitsBand": "termwise.health.rules_terms",
    "KLBlocksLearning": "termwise.health.rules_terms",
    "TermDominant": "termwise.health.rules_terms",
    "TermNegligible": "termwise.health.rules_terms",
    "TermStarved": "termwise.health.rules_terms",
    "default_rules": "termwise.health.defaults",
}
__getattr__ = lazy_exports(__name__, _MODULES)
