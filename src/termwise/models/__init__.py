"""Model components shared by recipes: backbones (+ LoRA, pooling) and Bayesian layers."""

from typing import TYPE_CHECKING

from termwise._lazy import lazy_exports

if TYPE_CHECKING:
    from termwise.models.bayes import BayesLinear

__all__ = ["BayesLinear"]
__getattr__ = lazy_exports(__name__, {"BayesLinear": "termwise.models.bayes"})
