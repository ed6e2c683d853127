"""Rules on Bayesian terms: a posterior whose noise has stopped mattering."""

from __future__ import annotations

from collections.abc import Sequence

from termwise.health.base import Rule, Window, pct
from termwise.health.findings import Finding
from termwise.terms.stats import STD_TO_MU, stat_key


class PosteriorCollapsed(Rule):
    """Mean posterior std over mean ``|raw_mu|`` below ``threshold`` (the ``std_to_mu``
    stat of :func:`termwise.terms.gaussian_kl`).

    When a draw is ``normalize(raw_mu + eps * std)``, only the ratio std / |raw_mu| moves
    the normalised vector: the model can grow |raw_mu| until the noise no longer matters,
    and the "Bayesian" model is then deterministic (its uncertainty says nothing).
    """

    code = "bayes.deterministic"

    def __init__(self, threshold: float = 0.02) -> None:
        self.threshold = threshold

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        found = []
        for term in window.terms_with_stat(STD_TO_MU):
            ratio = window.get(stat_key(term, STD_TO_MU))
            if not ratio < self.threshold:
                continue
            start = history[0].get(stat_key(term, STD_TO_MU)) if history else ratio
            found.append(
                self.finding(
                    window.step,
                    "warning",
                    f"{term}: posterior std is {pct(ratio)} of |raw_mu| (was {pct(start)} in the "
                    "first window): after normalisation the sampling noise barely moves the "
                    "embedding, so the model has become deterministic",
                    "regularise the mean (regularize_mean: true) so |raw_mu| cannot grow "
                    "freely, or raise the KL weight / prior_var; compare uncertainty AUROC",
                    {"std_to_mu": ratio, "first_window": start, "threshold": self.threshold},
                    term,
                )
            )
        return found
