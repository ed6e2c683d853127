"""``termwise.btrm.load(DIR).score([...])``: the reward model's load API (see recipes/btrm).

At corpus scale: :class:`ScoreBatch` for ``ray.data.Dataset.map_batches`` and
:class:`BtrmFilter`, a datatrove pipeline step (each needs its extra: ``termwise[ray]``,
``termwise[datatrove]``).
"""

from typing import TYPE_CHECKING

from termwise._lazy import lazy_exports
from termwise.recipes.btrm.score import (
    SCORE_TOKENS,
    RewardScorer,
    encode,
    load,
    merge_lora,
    quantize_backbone,
)

if TYPE_CHECKING:
    from termwise.recipes.btrm.corpus import ScoreBatch
    from termwise.recipes.btrm.datatrove_filter import BtrmFilter

__all__ = [
    "SCORE_TOKENS",
    "BtrmFilter",
    "RewardScorer",
    "ScoreBatch",
    "encode",
    "load",
    "merge_lora",
    "quantize_backbone",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "ScoreBatch": "termwise.recipes.btrm.corpus",
        "BtrmFilter": "termwise.recipes.btrm.datatrove_filter",
    },
)
