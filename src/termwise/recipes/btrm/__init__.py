"""The multi-head Bradley-Terry reward model (``termwise btrm``).

``config`` (what a run is), ``sources`` and ``data`` (who is a positive or a negative of
which head), ``model``, ``recipe`` (setup, train, evaluate, save), ``score`` (the load and
scoring API: :func:`load`), ``cli``. ``termwise.btrm`` re-exports the load API.
"""

from typing import TYPE_CHECKING

from termwise._lazy import lazy_exports

if TYPE_CHECKING:
    from termwise.recipes.btrm.score import RewardScorer, load

__all__ = ["RewardScorer", "load"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "termwise.recipes.btrm.score"))
