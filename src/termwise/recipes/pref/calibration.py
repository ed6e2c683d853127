"""Temperature scaling of preference probabilities (Guo et al. 2017).

One scalar ``T`` divides every score before the sigmoid: ``P(a > b) = sigmoid(s / T)``.
It is fitted on pairs the model did not train on by minimising the NLL of the preferred
response, with a few L-BFGS steps on the cached scores (no backbone pass repeated).

* ``bt`` and ``gpm``: ``sigmoid(s / T) > 0.5`` exactly when ``s > 0``, so accuracy cannot
  change (a monotone map of each pair's score).
* ``bayes_gpm``: ``T`` divides each posterior draw's score, hence also their mean; ``p`` is
  still the posterior-predictive mean of the draws' probabilities and ``std`` their spread,
  now in calibrated units. Every pair's draws are scaled by the same ``T``, so the order of
  the pairs by the std of their scores is unchanged and the std keeps ranking uncertain
  pairs as before; only a pair whose draws disagree in sign can change side (counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from termwise.recipes.pref.eval import ECE_BINS, expected_calibration_error

# The fit searches T in this range; a fit that ends on a bound says so.
TEMPERATURE_BOUNDS = (0.05, 50.0)


def probabilities(scores: np.ndarray, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(p, std)`` per pair from scores ``[draws, pairs]``: mean and spread over draws of
    ``sigmoid(score / T)`` (one draw: std 0)."""
    p = 1.0 / (1.0 + np.exp(-np.asarray(scores, dtype=np.float64) / temperature))
    return p.mean(0), p.std(0)


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float
    pairs: int
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    at_bound: bool
    # Every score on one side (all pairs right, or all wrong): the NLL falls all the way to
    # T -> 0 (or infinity), so no temperature is fitted and T stays 1.
    one_sided: bool = False

    def summary(self) -> str:
        bound = " (at its bound: the scores carry no usable scale)" if self.at_bound else ""
        if self.one_sided:
            bound = " (kept: every pair is on one side, so no temperature can be fitted)"
        return (
            f"temperature {self.temperature:.3g}{bound} fitted on {self.pairs} pairs: "
            f"NLL {self.nll_before:.3f} -> {self.nll_after:.3f}, "
            f"ECE {self.ece_before:.3f} -> {self.ece_after:.3f}"
        )


def _nll(scores: torch.Tensor, log_t: torch.Tensor | float) -> torch.Tensor:
    """Mean ``-log P(chosen > rejected)`` with ``P`` the mean over draws."""
    log_p = torch.nn.functional.logsigmoid(scores / torch.as_tensor(log_t).exp())
    draws = torch.tensor(float(scores.shape[0]), dtype=scores.dtype)
    return -(torch.logsumexp(log_p, 0) - draws.log()).mean()


def fit_temperature(scores: np.ndarray, steps: int = 50) -> TemperatureFit:
    """The ``T`` minimising the NLL of ``probabilities(scores, T)`` (scores ``[draws,
    pairs]`` of chosen over rejected), by L-BFGS on ``log T`` in float64."""
    values = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    if values.ndim != 2 or values.shape[1] == 0:
        raise ValueError(f"fit_temperature: need scores [draws, pairs], got {tuple(values.shape)}")
    if (values > 0).all() or (values < 0).all() or (values == 0).all():
        ece, nll = expected_calibration_error(probabilities(scores)[0]), float(_nll(values, 0))
        return TemperatureFit(1.0, values.shape[1], nll, nll, ece, ece, False, one_sided=True)
    low, high = (float(np.log(b)) for b in TEMPERATURE_BOUNDS)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _nll(values, log_t.clamp(low, high))
        loss.backward()
        return loss

    optimizer.step(closure)
    fitted = float(log_t.detach().clamp(low, high).exp())
    before, after = probabilities(scores)[0], probabilities(scores, fitted)[0]
    with torch.no_grad():
        nll_before, nll_after = float(_nll(values, 0.0)), float(_nll(values, np.log(fitted)))
    return TemperatureFit(
        temperature=fitted,
        pairs=values.shape[1],
        nll_before=nll_before,
        nll_after=nll_after,
        ece_before=expected_calibration_error(before),
        ece_after=expected_calibration_error(after),
        at_bound=not (TEMPERATURE_BOUNDS[0] * 1.001 < fitted < TEMPERATURE_BOUNDS[1] / 1.001),
    )


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
