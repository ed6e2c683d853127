"""Rules on the objective's terms: free bits, shares, KL versus data, auto-scaled weights."""

from __future__ import annotations

import abc
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from termwise.health.base import Rule, Window, pct, weight_for_share
from termwise.health.findings import Finding
from termwise.terms.stats import (
    FREE_BITS,
    FREE_FRACTION,
    KL_AFTER,
    KL_RAW,
    PENALTY_REDUCTION,
    TARGET_GAP,
    WANTED_WEIGHT,
    stat_key,
)

SUGGESTED_FREE_BITS_RATIO = 0.3  # free bits at 0.3 x observed KL free ~30 % of the penalty


def _suggested_free_bits(kl_raw: float) -> float:
    return float(f"{SUGGESTED_FREE_BITS_RATIO * kl_raw:.3g}")


class FreeBitsAllFree(Rule):
    """``kl_after == 0`` while ``kl_raw > 0``: free bits above the KL the model has, so the
    KL term is inert (its gradient is exactly zero).

    A posterior starts at the prior, so every free-bits run is all free until its KL has
    grown past the threshold: while the KL weight still ramps (a warm-up) the rule fires
    only when the KL is under ``ramp_fraction`` of the threshold, far enough that the
    growth still to come would not close the gap; after the ramp, whenever all is free."""

    code = "free_bits.all_free"

    def __init__(self, ramp_fraction: float = 0.25, ramp_tolerance: float = 0.05) -> None:
        self.ramp_fraction = ramp_fraction
        self.ramp_tolerance = ramp_tolerance

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        found = []
        for term in window.terms_with_stat(KL_AFTER):
            kl_raw = window.get(stat_key(term, KL_RAW))
            kl_after = window.get(stat_key(term, KL_AFTER))
            if not (kl_raw > 0 and kl_after <= 1e-12):
                continue
            growing = _weight_ramping(term, window, history, self.ramp_tolerance)
            if growing and not kl_raw < self.ramp_fraction * window.get(stat_key(term, FREE_BITS)):
                continue  # the KL may still grow past the threshold as the weight ramps
            free_bits = window.get(stat_key(term, FREE_BITS))
            suggested = _suggested_free_bits(kl_raw)
            found.append(
                self.finding(
                    window.step,
                    "warning",
                    f"{term}: all KL is free: free_bits {free_bits:.3g} is above the observed KL "
                    f"{kl_raw:.3g}, so kl_after is 0 and the KL term has no gradient "
                    f"(free_fraction {pct(window.get(f'{term}.free_fraction'))})",
                    f"set free_bits to {suggested:g} (0.3 x observed KL), which leaves about "
                    "70 % of the KL penalty in force",
                    {
                        "kl_raw": kl_raw,
                        "kl_after": kl_after,
                        "free_bits": free_bits,
                        "free_fraction": window.get(stat_key(term, FREE_FRACTION)),
                        "suggested_free_bits": suggested,
                    },
                    subject=term,
                )
            )
        return found


@dataclass(frozen=True)
class Band:
    """Penalty-reduction thresholds: below ``tight`` the threshold frees too little to
    matter, above ``generous`` it frees too much; ``healthy`` is the target range."""

    tight: float = 0.10
    healthy: tuple[float, float] = (0.20, 0.40)
    generous: float = 0.60

    @property
    def centre(self) -> float:
        return (self.healthy[0] + self.healthy[1]) / 2

    def shifted(self, offset: float) -> Band:
        low, high = self.healthy
        return Band(self.tight + offset, (low + offset, high + offset), self.generous + offset)


class FreeBitsBand(Rule):
    """Where ``penalty_reduction`` sits: < 10 % too tight, > 60 % too generous, 20-40 %
    healthy; not judged while the KL weight ramps (the KL is then moving toward where the
    weight will hold it, and a threshold sized on it would be stale a window later).
    ``calibrate_after=K`` re-centres the band on the median of the first K
    windows (when that median is inside the default tight..generous range), as the source
    practice does after 15 epochs: later windows are then judged against what this model
    showed early on."""

    code = "free_bits.band"

    def __init__(
        self,
        band: Band | None = None,
        calibrate_after: int | None = None,
        ramp_tolerance: float = 0.05,
    ) -> None:
        self.band = band or Band()
        self.ramp_tolerance = ramp_tolerance
        self.calibrate_after = calibrate_after
        self.observed: list[float] = []
        self.calibrated = False

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        found = []
        for term in window.terms_with_stat(PENALTY_REDUCTION):
            reduction = window.get(stat_key(term, PENALTY_REDUCTION))
            kl_raw = window.get(stat_key(term, KL_RAW))
            if not kl_raw > 0 or window.get(stat_key(term, KL_AFTER)) <= 1e-12:
                continue  # nothing to judge, or free_bits.all_free covers it
            if not window.get(stat_key(term, FREE_BITS), 1.0) > 0:
                continue  # free bits off (0): a choice, not a threshold to tune
            if _weight_ramping(term, window, history, self.ramp_tolerance):
                continue  # the KL follows a KL weight still in its warm-up
            calibration = self._calibrate(window.step, reduction, term)
            if calibration is not None:
                found.append(calibration)
            found.append(self._judge(window, term, reduction, kl_raw))
        return found

    def _judge(self, window: Window, term: str, reduction: float, kl_raw: float) -> Finding:
        band = self.band
        evidence: dict[str, float | str] = {
            "penalty_reduction": reduction,
            "kl_raw": kl_raw,
            "free_bits": window.get(stat_key(term, FREE_BITS)),
            "free_fraction": window.get(stat_key(term, FREE_FRACTION)),
            "healthy_low": band.healthy[0],
            "healthy_high": band.healthy[1],
            "suggested_free_bits": _suggested_free_bits(kl_raw),
        }
        suggestion = f"set free_bits to {_suggested_free_bits(kl_raw):g} (0.3 x observed KL)"
        free = pct(window.get(stat_key(term, FREE_FRACTION)))
        status = f"penalty reduction {pct(reduction)}, free_fraction {free}"
        if reduction < band.tight:
            evidence["verdict"] = "too tight"
            return self.finding(
                window.step,
                "warning",
                f"{term}: free bits too tight ({status}): they barely matter",
                suggestion,
                evidence,
                term,
            )
        if reduction > band.generous:
            evidence["verdict"] = "too generous"
            return self.finding(
                window.step,
                "warning",
                f"{term}: free bits too generous ({status}): most KL is free",
                suggestion,
                evidence,
                term,
            )
        low, high = band.healthy
        if low <= reduction <= high:
            del evidence["suggested_free_bits"]  # nothing to change: no fix to offer
            evidence["verdict"] = "healthy"
            return self.finding(
                window.step,
                "info",
                f"{term}: free bits healthy ({status})",
                "no change needed",
                evidence,
                term,
            )
        evidence["verdict"] = "borderline"
        return self.finding(
            window.step,
            "info",
            f"{term}: free bits borderline ({status})",
            suggestion,
            evidence,
            term,
        )

    def _calibrate(self, step: int, reduction: float, term: str) -> Finding | None:
        if self.calibrate_after is None or self.calibrated:
            return None
        self.observed.append(reduction)
        if len(self.observed) < self.calibrate_after:
            return None
        self.calibrated = True
        centre = statistics.median(self.observed)
        if not self.band.tight < centre < self.band.generous:
            return self.finding(
                step,
                "info",
                f"{term}: free-bits band not calibrated: the first {len(self.observed)} windows "
                f"had a median penalty reduction of {pct(centre)}, outside the usable range",
                "fix free_bits first; calibration only re-centres a working setting",
                {"median_reduction": centre},
                term,
            )
        self.band = self.band.shifted(centre - self.band.centre)
        low, high = self.band.healthy
        return self.finding(
            step,
            "info",
            f"{term}: free-bits band calibrated on the first {len(self.observed)} windows: "
            f"healthy is now {pct(low)}-{pct(high)}",
            "later findings compare against this run's own early behaviour",
            {"median_reduction": centre, "healthy_low": low, "healthy_high": high},
            term,
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "observed": self.observed,
            "calibrated": self.calibrated,
            "tight": self.band.tight,
            "healthy": list(self.band.healthy),
            "generous": self.band.generous,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.observed = list(state.get("observed", []))
        self.calibrated = bool(state.get("calibrated", False))
        if "healthy" in state:
            low, high = state["healthy"]
            self.band = Band(state["tight"], (low, high), state["generous"])


def _ramping(term: str, window: Window, history: Sequence[Window], tolerance: float) -> bool:
    """True while the term's weight still moves between windows (a warm-up in progress).

    The first window has nothing to compare with: it counts as ramping, since a weight
    warm-up usually starts there and a share judged mid-ramp would be misleading.
    """
    if not history:
        return True
    before, now = history[-1].get(f"{term}.weight"), window.get(f"{term}.weight")
    return abs(now - before) > tolerance * max(abs(now), 1e-12)


def _weight_ramping(term: str, window: Window, history: Sequence[Window], tolerance: float) -> bool:
    """:func:`_ramping` for a term that logs its weight (a bare KL term does not: never)."""
    return f"{term}.weight" in window.means and _ramping(term, window, history, tolerance)


class TermShare(Rule, abc.ABC):
    """Base for share rules on non-data terms; terms whose weight is still ramping (a
    warm-up), or that are inactive or exactly 0, are skipped."""

    description = ""

    def __init__(
        self,
        threshold: float,
        target: float,
        roles: tuple[str, ...] = ("kl", "aux", "regularizer"),
        ramp_tolerance: float = 0.05,
    ) -> None:
        self.threshold = threshold
        self.target = target
        self.roles = roles
        self.ramp_tolerance = ramp_tolerance

    @abc.abstractmethod
    def fires(self, share: float) -> bool:
        """Whether a term with this share of the loss is a finding."""

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        if len(window.terms) < 2:
            return []
        found = []
        for term in window.terms_with_role(*self.roles):
            share, weight = window.get(f"{term}.share"), window.get(f"{term}.weight")
            raw = window.get(f"{term}.raw")
            if not (weight > 0 and raw != 0 and window.get(f"{term}.active") > 0):
                continue
            if not self.fires(share) or _ramping(term, window, history, self.ramp_tolerance):
                continue
            evidence = {"share": share, "weight": weight, "raw": raw}
            if 0 < share < 1:
                suggested = weight_for_share(weight, share, self.target)
                evidence["suggested_weight"] = suggested
                suggestion = f"weight {suggested:.3g} would give it a {pct(self.target)} share"
            else:
                suggestion = "check that the other terms are computed at all"
            found.append(
                self.finding(
                    window.step,
                    "warning",
                    f"{term} ({window.roles[window.terms.index(term)]}) {self.description}: "
                    f"{pct(share)} of the total at weight {weight:.3g}",
                    suggestion,
                    evidence,
                    term,
                )
            )
        return found


class TermNegligible(TermShare):
    """An auxiliary or regulariser term below 3 % of the total (a teacher term contributing
    2 %). KL terms are left out by default: a small KL share at the ELBO's weight is the
    usual case, not a fault (posterior collapse and free bits have their own rules), and
    a weight raised to lift it would distort the bound."""

    code = "term.negligible"
    description = "contributes almost nothing"

    def __init__(
        self,
        threshold: float = 0.03,
        target: float = 0.10,
        roles: tuple[str, ...] = ("aux", "regularizer"),
        target_tolerance: float = 2 * math.log(1.3),
        **kwargs: Any,
    ) -> None:
        super().__init__(threshold, target, roles=roles, **kwargs)
        # |target_gap| within this is "at the target" (log-square: scores within 1.3x of 1).
        self.target_tolerance = target_tolerance

    def fires(self, share: float) -> bool:
        return share < self.threshold

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        # A KL term made small by its free bits is the free-bits rules' case: a larger
        # weight would multiply a penalty that is mostly free, not restore the term.
        # A regulariser that reports ``target_gap`` is judged by what it regularises: at its
        # target it is small by design, and a larger weight would change nothing.
        return [
            f
            for f in super().check_window(window, history)
            if not window.get(stat_key(f.subject, FREE_FRACTION), 0.0) > 0.5
            and not abs(window.get(stat_key(f.subject, TARGET_GAP), math.inf))
            <= self.target_tolerance
        ]


class TermDominant(TermShare):
    """An auxiliary or regulariser term above 80 % of the total (a log-square or centring
    term that swamps the ranking). KL terms are left out by default: at the ELBO's weight
    (1/N) a Bayesian layer's KL is most of the total by construction while the data term
    learns as well as at a tenth of that weight (``docs/health.md``, the scorecard); a KL
    that does stop learning is ``kl.blocks_learning``'s."""

    code = "term.dominant"
    description = "swamps the other terms"

    def __init__(
        self,
        threshold: float = 0.80,
        target: float = 0.50,
        roles: tuple[str, ...] = ("aux", "regularizer"),
        **kwargs: Any,
    ) -> None:
        super().__init__(threshold, target, roles=roles, **kwargs)

    def fires(self, share: float) -> bool:
        return share > self.threshold

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        # A term trained down fast (a teacher distilled in the first steps) is a transient:
        # left alone when its share, falling at the rate since the last window, would be
        # under the threshold by the next one.
        found = super().check_window(window, history)
        if not history:
            return found
        return [f for f in found if not self._leaving(f.subject, window, history[-1])]

    def _leaving(self, term: str, window: Window, before: Window) -> bool:
        now, then = window.get(f"{term}.share"), before.get(f"{term}.share")
        return now - (then - now) <= self.threshold


class KLBlocksLearning(Rule):
    """The data term has not improved by ``min_improvement`` over ``patience`` windows
    while KL terms hold more than ``kl_share`` of the total (95 %: the data term is then
    under a twentieth of the objective), or KL terms hold ``overwhelming`` (99 %) of it from
    the second window on, where the data term no longer steers the optimizer and a noisy
    early data loss should not delay the finding. A plateau at a smaller KL share is not the
    KL's doing: a Bayesian classifier at the ELBO's weight (86-91 % KL) plateaus for a third
    of its run and then learns, step for step as at a tenth of that weight."""

    code = "kl.blocks_learning"

    def __init__(
        self,
        kl_share: float = 0.95,
        target_share: float = 0.25,
        patience: int = 3,
        min_improvement: float = 0.01,
        overwhelming: float = 0.99,
    ) -> None:
        self.kl_share = kl_share
        self.target_share = target_share  # what the suggested KL weight aims at
        self.patience = patience
        self.min_improvement = min_improvement
        self.overwhelming = overwhelming

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        data_terms = window.terms_with_role("data")
        kl_terms = window.terms_with_role("kl")
        if not data_terms or not kl_terms or not history:
            return []

        def data_loss(w: Window) -> float:
            return sum(w.get(f"{t}.raw") for t in data_terms)

        def kl_share(w: Window) -> float:
            return sum(w.get(f"{t}.share") for t in kl_terms)

        if kl_share(window) >= self.overwhelming:
            before, recent, share = data_loss(history[0]), data_loss(window), kl_share(window)
            why = f"KL terms hold {pct(share)} of the total, the data term under 1 %"
        elif len(history) >= self.patience:
            recent_windows = [*history[len(history) - self.patience + 1 :], window]
            earlier = history[: len(history) - self.patience + 1]
            before = min(data_loss(w) for w in earlier)
            recent = min(data_loss(w) for w in recent_windows)
            share = statistics.fmean(kl_share(w) for w in recent_windows)
            improved = recent < before - self.min_improvement * abs(before)
            if improved or share <= self.kl_share:
                return []
            why = (
                f"the data loss has not improved for {self.patience} windows while KL terms "
                f"hold {pct(share)} of the total"
            )
        else:
            return []
        evidence = {"data_loss_before": before, "data_loss_recent": recent, "kl_share": share}
        lower = "lower the KL weight"
        if len(kl_terms) == 1:  # several KL terms: which one is a choice
            suggested = self._weight_for_target(window, kl_terms[0], data_terms)
            evidence.update({"weight": window.get(f"{kl_terms[0]}.weight")})
            if suggested > 0:
                evidence["suggested_weight"] = suggested
                lower = f"lower the KL weight to {suggested:.3g} (a {pct(self.target_share)} share)"
        return [
            self.finding(
                window.step,
                "warning",
                f"KL blocks learning: {why} (data loss ({', '.join(data_terms)}) "
                f"{before:.4g} -> {recent:.4g})",
                "first check that a run without KL can fit the data at all (termwise bayes-clf "
                f"diagnose does this); if it can, {lower}, warm it up from 0 or widen the prior",
                evidence,
                ",".join(kl_terms),
            )
        ]

    def _weight_for_target(self, window: Window, kl: str, data_terms: list[str]) -> float:
        """The KL weight at which the KL would be ``target_share`` of KL plus data, solved on
        the raw values (a share that rounds to 100 % has no ratio left to solve on)."""
        data = sum(window.get(f"{t}.weighted") for t in data_terms)
        raw = window.get(f"{kl}.raw")
        if not (data > 0 and raw > 0):
            return math.nan
        return self.target_share / (1 - self.target_share) * data / raw


class AutoScalePinned(Rule):
    """An :class:`~termwise.schedules.AutoScale` weight at one of its clamps in >=
    ``fraction`` of a window's steps: the term is no longer held at its target fraction.
    The objective logs ``at_bound`` as +1 at ``hi`` and -1 at ``lo``, so the window mean
    says which clamp; the fix moves that clamp to twice (hi) or half (lo) the mean
    unclamped weight the target asked for, or ``widen`` x out when that is not logged."""

    code = "autoscale.pinned"

    def __init__(self, fraction: float = 0.9, widen: float = 10.0) -> None:
        self.fraction = fraction
        self.widen = widen

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        found = []
        for term in window.terms_with_stat("at_bound"):
            side = window.get(f"{term}.at_bound")
            if not abs(side) >= self.fraction:
                continue
            weight, share = window.get(f"{term}.weight"), window.get(f"{term}.share")
            at_high = side > 0
            bound = "hi" if at_high else "lo"
            # Room for twice what the target asked for on average (the objective logs the
            # unclamped weight), else `widen` x the clamp.
            wanted = window.get(stat_key(term, WANTED_WEIGHT))
            if at_high:
                value = 2 * wanted if wanted > weight else weight * self.widen
            else:
                value = wanted / 2 if 0 < wanted < weight else weight / self.widen
            suggested = float(f"{value:.3g}")
            found.append(
                self.finding(
                    window.step,
                    "warning",
                    f"{term}: auto-scaled weight pinned at its {bound} clamp in {pct(abs(side))} "
                    f"of steps (weight {weight:.3g}, share {pct(share)})",
                    f"move the {bound} clamp to {suggested:g}, or change "
                    "target_fraction: while pinned the weight is a constant, not a scale",
                    {
                        "pinned_fraction": abs(side),
                        "weight": weight,
                        "wanted_weight": wanted,
                        "share": share,
                        f"suggested_clamp_{'high' if at_high else 'low'}": suggested,
                    },
                    term,
                )
            )
        return found


class TermStarved(Rule):
    """A term computed in fewer than ``fraction`` of a window's steps: e.g. a reward head
    whose batches rarely hold both a positive and a negative, so it barely trains."""

    code = "term.starved"

    def __init__(self, fraction: float = 0.25) -> None:
        self.fraction = fraction

    def check_window(self, window: Window, history: Sequence[Window]) -> list[Finding]:
        found = []
        for term in window.terms:
            active = window.get(f"{term}.active", 1.0)
            if active >= self.fraction:
                continue
            found.append(
                self.finding(
                    window.step,
                    "warning",
                    f"{term} was computed in only {pct(active)} of the last {window.steps} "
                    "steps (nothing to compute in the other batches)",
                    "check its data (termwise btrm test-decoders), sample it more often, or "
                    "raise the batch size",
                    {"active_fraction": active, "steps": window.steps},
                    term,
                )
            )
        return found
