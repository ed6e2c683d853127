"""The value every loss term returns."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class TermOutput(NamedTuple):
    """Per-example loss values (unreduced, differentiable) and detached statistics.

    ``stats`` holds 0-dim tensors that stay on the device; reading them as Python
    floats is left to the health monitor, which syncs every N steps rather than every step.
    """

    values: Tensor
    stats: dict[str, Tensor]
