"""Loss terms: pure functions on tensors returning per-example values and detached stats.

Every term returns :class:`TermOutput` ``(values, stats)``: ``values`` keeps the batch
shape (reduce it yourself, or hand the output to :class:`termwise.Objective`), and
``stats`` holds 0-dim detached tensors the health monitor reads every N steps.
"""

from termwise.terms._output import TermOutput
from termwise.terms.contrastive import next_vector_info_nce
from termwise.terms.directional import directional_margin
from termwise.terms.kl import (
    BayesianLayer,
    bayes_layer_kl,
    free_bits_kl,
    free_bits_raw_kl,
    gaussian_kl,
    gaussian_kl_per_dim,
)
from termwise.terms.multihead import MultiHeadTerms, multihead_bradley_terry
from termwise.terms.preference import gpm_loss, gpm_score, reward_centering
from termwise.terms.ranking import bradley_terry, log_square, saturation_fraction, soft_cap

__all__ = [
    "BayesianLayer",
    "MultiHeadTerms",
    "TermOutput",
    "bayes_layer_kl",
    "bradley_terry",
    "directional_margin",
    "free_bits_kl",
    "free_bits_raw_kl",
    "gaussian_kl",
    "gaussian_kl_per_dim",
    "gpm_loss",
    "gpm_score",
    "log_square",
    "multihead_bradley_terry",
    "next_vector_info_nce",
    "reward_centering",
    "saturation_fraction",
    "soft_cap",
]
