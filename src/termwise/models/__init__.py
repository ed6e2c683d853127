"""Model components shared by recipes."""

from termwise.models.bayes import BayesLinear

__all__ = ["BayesLinear"]
