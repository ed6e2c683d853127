"""Rules on reported evaluation metrics: generalisation gap, rising validation loss, a
held-out loss no better than predicting the class prior."""

from __future__ import annotations

from collections.abc import Sequence

from termwise.health.base import MetricReport, Rule
from termwise.health.findings import Finding


def _first_present(report: MetricReport, names: Sequence[str]) -> str | None:
    return next((n for n in names if n in report.metrics), None)


class FitTestAboveTrain(Rule):
    """Held-out loss above the training loss by more than ``gap`` (relative): the model
    fits what it trained on better than what it will see."""

    code = "fit.test_above_train"

    def __init__(
        self,
        gap: float = 0.50,
        train: str = "train_loss",
        held_out: Sequence[str] = ("test_loss", "val_loss"),
    ) -> None:
        self.gap = gap
        self.train = train
        self.held_out = tuple(held_out)

    def check_metrics(self, reports: Sequence[MetricReport]) -> list[Finding]:
        report = reports[-1]
        held_out = _first_present(report, self.held_out)
        if held_out is None or self.train not in report.metrics:
            return []
        train, test = report.metrics[self.train], report.metrics[held_out]
        if not test > train * (1 + self.gap) + 1e-12:
            return []
        return [
            self.finding(
                report.step,
                "warning",
                f"{held_out} {test:.4g} is {100 * (test / max(train, 1e-12) - 1):.0f} % above "
                f"{self.train} {train:.4g}: the model is memorising the training set",
                "stop earlier, add regularisation (dropout, weight decay, a KL prior) or data",
                {"train": train, "held_out": test, "gap": self.gap},
                held_out,
            )
        ]


class FitValRising(Rule):
    """Validation loss up in each of the last ``patience`` reports while training loss
    went down: overfitting has started."""

    code = "fit.val_rising"

    def __init__(
        self,
        patience: int = 3,
        val: Sequence[str] = ("val_loss", "test_loss"),
        train: str = "train_loss",
    ) -> None:
        self.patience = patience
        self.val = tuple(val)
        self.train = train

    def check_metrics(self, reports: Sequence[MetricReport]) -> list[Finding]:
        name = _first_present(reports[-1], self.val)
        if name is None:
            return []
        series = [
            (r.step, r.metrics[name], r.metrics.get(self.train))
            for r in reports
            if name in r.metrics
        ]
        if len(series) <= self.patience:
            return []
        recent = series[-(self.patience + 1) :]
        rising = all(b[1] > a[1] for a, b in zip(recent, recent[1:], strict=False))
        train_values = [t for _, _, t in recent if t is not None]
        train_falling = len(train_values) < 2 or train_values[-1] < train_values[0]
        if not (rising and train_falling):
            return []
        best_step, best_value, _ = min(series, key=lambda item: item[1])
        return [
            self.finding(
                reports[-1].step,
                "warning",
                f"{name} rose in each of the last {self.patience} evaluations "
                f"({recent[0][1]:.4g} -> {recent[-1][1]:.4g}) while {self.train} fell",
                f"use the checkpoint nearest step {best_step} ({name} {best_value:.4g}) and stop "
                "earlier, or regularise more",
                {"best_step": best_step, "best_value": best_value, "latest": recent[-1][1]},
                name,
            )
        ]


class FitAtBaseline(Rule):
    """The held-out loss no lower than ``margin`` (relative) under the loss of predicting
    the training class shares (``baseline_loss``, reported by a classifier's evaluation):
    whatever trained, nothing of it carries to unseen rows. The usual cause is data whose
    features do not predict the target; a regulariser that blocks learning is the other."""

    code = "fit.at_baseline"

    def __init__(
        self,
        margin: float = 0.01,
        baseline: str = "baseline_loss",
        held_out: Sequence[str] = ("test_loss", "val_loss"),
    ) -> None:
        self.margin = margin
        self.baseline = baseline
        self.held_out = tuple(held_out)

    def check_metrics(self, reports: Sequence[MetricReport]) -> list[Finding]:
        report = reports[-1]
        held_out = _first_present(report, self.held_out)
        if held_out is None or self.baseline not in report.metrics:
            return []
        baseline, loss = report.metrics[self.baseline], report.metrics[held_out]
        if not loss > baseline * (1 - self.margin):
            return []
        return [
            self.finding(
                report.step,
                "warning",
                f"{held_out} {loss:.4g} is not below the class prior's {baseline:.4g}: the "
                "model predicts unseen rows no better than the label frequencies do",
                "check that the features predict the target at all before tuning the model: "
                "termwise probe DATA --target COL (against shuffled labels and a random "
                "walk), or termwise bayes-clf diagnose (the same model without its KL)",
                {"held_out": loss, "baseline": baseline, "margin": self.margin},
                held_out,
            )
        ]
