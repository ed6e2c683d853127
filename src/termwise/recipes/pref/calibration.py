"""Calibration of preference probabilities: temperature scaling (Guo et al. 2017) with a
power on the score's magnitude.

``P(a > b) = sigmoid(sign(s) * (|s| / T) ** power)``. With ``power`` 1 this is temperature
scaling. One ``T`` has to trade the low-confidence bins against the top ones: a model whose
small scores are under-confident and whose large ones over-confident (gpm's, on held-out
pairs: docs/pref.md) gets a ``T`` that helps the top and hurts the bottom. A power below 1
compresses large scores and stretches small ones, which a ``T`` cannot do. Both are fitted
on pairs the model did not train on by minimising the NLL of the preferred response (L-BFGS
on the cached scores, no backbone pass repeated); the power has a log-normal prior centred
on 1 (``POWER_PRIOR_SIGMA``), so on a small dev file it stays near plain temperature scaling
unless the data insist, and ``T`` one centred on 1 (``TEMPERATURE_PRIOR_SIGMA``), because a
fit on the dev mix moves ``T`` further than prompts of a new kind want (docs/pref.md).

* ``bt`` and ``gpm``: the map is odd and strictly increasing, so ``p > 0.5`` exactly when
  ``s > 0``: accuracy cannot change.
* ``bayes_gpm``: the map is applied to each posterior draw's score; ``p`` is still the
  posterior-predictive mean of the draws' probabilities and ``std`` their spread, now in
  calibrated units. Each draw keeps its sign, so only a pair whose draws disagree in sign
  can change side (counted). With ``power`` 1 every pair's draws are scaled by the same
  ``T`` and the order of the pairs by the std of their scores is unchanged; a power other
  than 1 also spreads draws far from 0 less than draws near it, so a pair's std then says
  how uncertain its calibrated probability is, not its raw score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from termwise.recipes.pref.eval import ECE_BINS, expected_calibration_error

# The fit searches T and the power in these ranges; a fit that ends on a bound says so.
TEMPERATURE_BOUNDS = (0.05, 50.0)
POWER_BOUNDS = (0.2, 5.0)
# Prior std of log(power), chosen with the T prior on the leave-one-subset-out bench (docs/pref.md).
POWER_PRIOR_SIGMA = 0.25
# Prior std of log(T) (None: flat), chosen on the leave-one-subset-out bench (docs/pref.md).
TEMPERATURE_PRIOR_SIGMA: float | None = 0.5


@dataclass(frozen=True)
class Calibration:
    """The map from a pair's score to its calibrated logit (the default: raw scores)."""

    temperature: float = 1.0
    power: float = 1.0

    def logits(self, scores: np.ndarray) -> np.ndarray:
        values = np.asarray(scores, dtype=np.float64)
        return np.sign(values) * (np.abs(values) / self.temperature) ** self.power


RAW = Calibration()


def probabilities(
    scores: np.ndarray, calibration: Calibration = RAW
) -> tuple[np.ndarray, np.ndarray]:
    """``(p, std)`` per pair from scores ``[draws, pairs]``: mean and spread over draws of
    ``sigmoid(calibrated logit)`` (one draw: std 0)."""
    p = 1.0 / (1.0 + np.exp(-calibration.logits(scores)))
    return p.mean(0), p.std(0)


@dataclass(frozen=True)
class CalibrationFit:
    temperature: float
    power: float
    pairs: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    at_bound: bool
    # Every score on one side (all pairs right, or all wrong): the NLL falls all the way to
    # T -> 0 (or infinity), so nothing is fitted and the scores stay raw.
    one_sided: bool = False

    @property
    def calibration(self) -> Calibration:
        return Calibration(self.temperature, self.power)

    def summary(self) -> str:
        bound = " (at a bound: the scores carry no usable scale)" if self.at_bound else ""
        if self.one_sided:
            bound = " (kept: every pair is on one side, so no temperature can be fitted)"
        return (
            f"temperature {self.temperature:.3g}, power {self.power:.3g}{bound} fitted on "
            f"{self.pairs} pairs: NLL {self.nll_before:.3f} -> {self.nll_after:.3f}, "
            f"ECE {self.ece_before:.3f} -> {self.ece_after:.3f}"
        )


def _nll(scores: torch.Tensor, log_t: torch.Tensor, log_power: torch.Tensor) -> torch.Tensor:
    """Mean ``-log P(chosen > rejected)`` with ``P`` the mean over draws."""
    # The clamp keeps the gradient of |s| ** power finite at s = 0 (a tie scores 0 anyway).
    magnitude = (scores.abs().clamp_min(1e-12) / log_t.exp()) ** log_power.exp()
    log_p = torch.nn.functional.logsigmoid(scores.sign() * magnitude)
    draws = torch.tensor(float(scores.shape[0]), dtype=scores.dtype)
    return -(torch.logsumexp(log_p, 0) - draws.log()).mean()


@torch.no_grad()
def _nll_at(scores: torch.Tensor, calibration: Calibration) -> float:
    log_t, log_power = (
        torch.tensor(np.log(v), dtype=torch.float64)
        for v in (calibration.temperature, calibration.power)
    )
    return float(_nll(scores, log_t, log_power))


def fit_calibration(
    scores: np.ndarray,
    steps: int = 50,
    power_prior_sigma: float = POWER_PRIOR_SIGMA,
    temperature_prior_sigma: float | None = TEMPERATURE_PRIOR_SIGMA,
) -> CalibrationFit:
    """The ``T`` and power minimising the NLL of ``probabilities(scores, ...)`` (scores
    ``[draws, pairs]`` of chosen over rejected) plus their priors, by L-BFGS on their
    logs in float64. ``power_prior_sigma`` 0 fits the temperature alone;
    ``temperature_prior_sigma`` is the std of a normal prior on ``log T`` centred on 0
    (None: no prior on ``T``)."""
    values = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"fit_calibration: need scores [draws, pairs], got {tuple(values.shape)}")
    if (values > 0).all() or (values < 0).all() or (values == 0).all():
        ece, nll = expected_calibration_error(probabilities(scores)[0]), _nll_at(values, RAW)
        return CalibrationFit(1.0, 1.0, values.shape[1], nll, nll, ece, ece, False, one_sided=True)
    t_low, t_high = (float(np.log(b)) for b in TEMPERATURE_BOUNDS)
    p_low, p_high = (float(np.log(b)) for b in POWER_BOUNDS)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    log_power = torch.zeros((), dtype=torch.float64, requires_grad=True)
    free = [log_t, log_power] if power_prior_sigma > 0 else [log_t]
    # MAP: the prior's weight in a mean NLL shrinks as 1 / pairs.
    prior_weight = 1.0 / (2 * power_prior_sigma**2 * values.shape[1]) if free[1:] else 0.0
    t_weight = (
        0.0
        if temperature_prior_sigma is None
        else 1.0 / (2 * temperature_prior_sigma**2 * values.shape[1])
    )
    optimizer = torch.optim.LBFGS(free, lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        power, temperature = log_power.clamp(p_low, p_high), log_t.clamp(t_low, t_high)
        loss = _nll(values, temperature, power) + prior_weight * power**2
        loss = loss + t_weight * temperature**2
        loss.backward()
        return loss

    optimizer.step(closure)
    fitted_t = float(log_t.detach().clamp(t_low, t_high).exp())
    fitted_power = float(log_power.detach().clamp(p_low, p_high).exp())
    fitted = Calibration(fitted_t, fitted_power)
    return CalibrationFit(
        temperature=fitted_t,
        power=fitted_power,
        pairs=values.shape[1],
        nll_before=_nll_at(values, RAW),
        nll_after=_nll_at(values, fitted),
        ece_before=expected_calibration_error(probabilities(scores)[0]),
        ece_after=expected_calibration_error(probabilities(scores, fitted)[0]),
        at_bound=_at_bound(fitted_t, TEMPERATURE_BOUNDS) or _at_bound(fitted_power, POWER_BOUNDS),
    )


def _at_bound(value: float, bounds: tuple[float, float]) -> bool:
    return not (bounds[0] * 1.001 < value < bounds[1] / 1.001)


def reliability_table(p: np.ndarray, bins: int = ECE_BINS) -> list[tuple[str, int, float, float]]:
    """Per non-empty confidence bin: ``(range, pairs, mean confidence, accuracy)``, the
    numbers behind a reliability diagram (confidence ``max(p, 1 - p)``, as in the ECE)."""
    confidence = np.maximum(p, 1.0 - p)
    correct = p > 0.5
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = []
    for b in np.unique(index):
        chosen = index == b
        rows.append(
            (
                f"{b / bins:.2f}-{(b + 1) / bins:.2f}",
                int(chosen.sum()),
                float(confidence[chosen].mean()),
                float(correct[chosen].mean()),
            )
        )
    return rows
