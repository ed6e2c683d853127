"""Pairwise preference models: Bradley-Terry, GPM and Bayesian GPM (``termwise pref``).

``config``, ``data`` (pairs: reading, tokenising), ``model`` (+ save/load), ``recipe``
(setup, train, evaluate, save), ``eval`` (metrics), ``score`` (the load and scoring API:
:func:`load`), ``cli``. ``termwise.pref`` re-exports the load API.
"""

from typing import TYPE_CHECKING

from termwise._lazy import lazy_exports

if TYPE_CHECKING:
    from termwise.recipes.pref.score import PreferenceScorer, load

__all__ = ["PreferenceScorer", "load"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "termwise.recipes.pref.score"))
