"""termwise: training objectives that explain themselves.

Components: :mod:`termwise.terms` (loss terms), :mod:`termwise.schedules` (step -> value
functions), :class:`termwise.Objective` (named, weighted terms with per-term shares) and
:mod:`termwise.health` (rules that watch the objective while training).
"""

from termwise.errors import TermwiseUserError
from termwise.objective import Breakdown, Objective, TermReport

__version__ = "0.1.0"

__all__ = ["Breakdown", "Objective", "TermReport", "TermwiseUserError", "__version__"]
