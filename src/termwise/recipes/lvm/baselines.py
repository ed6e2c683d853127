"""The trivial next-vector predictors a model must beat: copy the last context sentence,
average the context, ridge regression on the concatenated context.

Each is a ``predict(context [B, C, d]) -> unit vectors [B, d]`` like the model, so every
gate runs on it unchanged. The ridge weights are fitted on the training windows and saved
beside the model (``ridge.safetensors``), so ``lvm eval`` on new documents compares with the
same ridge the training run saw.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from termwise.errors import TermwiseUserError
from termwise.recipes.lvm.data import Corpus, Windows
from termwise.recipes.lvm.gates import target_ranks

RIDGE_FILE = "ridge.safetensors"
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0)


def copy_last(context: Tensor) -> Tensor:
    return F.normalize(context[:, -1], dim=-1)


def mean_of_context(context: Tensor) -> Tensor:
    return F.normalize(context.mean(1), dim=-1)


class Ridge:
    """``normalize(flatten(context) @ weight + bias)``, fitted in closed form."""

    def __init__(self, weight: Tensor, bias: Tensor, alpha: float) -> None:
        self.weight, self.bias, self.alpha = weight.contiguous(), bias.contiguous(), alpha

    def __call__(self, context: Tensor) -> Tensor:
        return _predict(context.flatten(1).to(self.weight), self.weight, self.bias)

    @classmethod
    def fit(cls, corpus: Corpus, windows: Windows, held_fraction: float = 0.1) -> Ridge:
        """Fit on ``windows``, the penalty chosen among :data:`RIDGE_ALPHAS` by MRR (the
        target's rank among the held windows' targets) on the last ``held_fraction`` of their
        documents, then refitted on all of them."""
        x = corpus.vectors[windows.context].flatten(1).double()
        y = corpus.vectors[windows.target].double()
        documents = windows.document.unique()
        held = torch.isin(
            windows.document, documents[-max(1, int(len(documents) * held_fraction)) :]
        )
        best = RIDGE_ALPHAS[0]
        if held.any() and (~held).any():
            fit, check = ~held, held

            bank, rows = F.normalize(y[check], dim=-1), torch.arange(int(check.sum()))

            def mrr(alpha: float) -> float:
                pred = _predict(x[check], *_solve(x[fit], y[fit], alpha))
                return float((1.0 / target_ranks(pred, bank, rows).double()).mean())

            best = max(RIDGE_ALPHAS, key=mrr)
        weight, bias = _solve(x, y, best)
        return cls(weight.float(), bias.float(), best)

    def save(self, directory: Path) -> None:
        save_file(
            {
                "weight": self.weight,
                "bias": self.bias,
                "alpha": torch.tensor(self.alpha, dtype=torch.float64),
            },
            str(directory / RIDGE_FILE),
        )

    @classmethod
    def load(cls, directory: Path) -> Ridge | None:
        path = directory / RIDGE_FILE
        if not path.is_file():
            return None
        try:
            tensors = load_file(str(path))
            return cls(tensors["weight"], tensors["bias"], float(tensors["alpha"]))
        except (OSError, KeyError, ValueError, SafetensorError) as error:
            raise TermwiseUserError(f"not a ridge baseline file: {error}", path=path) from None


def _solve(x: Tensor, y: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Ridge with an unpenalised bias: centre, solve ``(X'X + alpha I) W = X'Y``."""
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc = x - x_mean
    gram = xc.T @ xc + alpha * torch.eye(x.shape[1], dtype=x.dtype)
    weight = torch.linalg.solve(gram, xc.T @ (y - y_mean))
    return weight, y_mean - x_mean @ weight


def _predict(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    return F.normalize(x @ weight + bias, dim=-1)


def trivial_predictors(ridge: Ridge | None) -> dict[str, Callable[[Tensor], Tensor]]:
    """The baselines by the name the gate tables print."""
    predictors: dict[str, Callable[[Tensor], Tensor]] = {
        "copy-last": copy_last,
        "mean of context": mean_of_context,
    }
    if ridge is not None:
        predictors[f"ridge (alpha {ridge.alpha:g})"] = ridge
    return predictors
