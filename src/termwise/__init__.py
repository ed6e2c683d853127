"""termwise: training objectives that explain themselves.

Components: :mod:`termwise.terms` (loss terms), :mod:`termwise.schedules` (step -> value
functions), :class:`termwise.Objective` (named, weighted terms with per-term shares) and
:mod:`termwise.health` (rules that watch the objective while training). Systems live in
``termwise.recipes.<system>``; ``termwise.btrm`` and ``termwise.pref`` are their load APIs.
"""

from typing import TYPE_CHECKING

from termwise._lazy import lazy_exports
from termwise.errors import TermwiseUserError

if TYPE_CHECKING:
    from termwise.objective import Breakdown, Objective, TermReport

__version__ = "0.1.0"

__all__ = ["Breakdown", "Objective", "TermReport", "TermwiseUserError", "__version__"]

# Loaded on first use: `termwise --version` and config errors never import torch.
__getattr__ = lazy_exports(
    __name__, {name: "termwise.objective" for name in ("Breakdown", "Objective", "TermReport")}
)
