"""The names of the stats terms report beside their values (``TERM.NAME`` in the logs).

The terms write them, the health rules read them and the progress bar shows some of them:
all three import the names from here, so a renamed stat cannot silently drop out of a rule.
"""

from __future__ import annotations

# free_bits_kl
KL_RAW = "kl_raw"  # the KL before the threshold
KL_AFTER = "kl_after"  # the KL the term charges
PENALTY_REDUCTION = "penalty_reduction"  # (kl_raw - kl_after) / kl_raw
FREE_FRACTION = "free_fraction"  # share of tokens under the threshold (no KL gradient)
FREE_BITS = "free_bits"  # the threshold in force
# gaussian_kl
STD_TO_MU = "std_to_mu"  # posterior std over |mu|: near its start, the posterior did not learn
# log_square and reward centering: how far positive scores sit from their target
TARGET_GAP = "target_gap"
# Objective, for an AutoScale weight: the weight before its clamp
WANTED_WEIGHT = "wanted_weight"

# Stats the progress bar shows for any term that reports them: label and multiplier.
PROGRESS: dict[str, tuple[str, float]] = {
    KL_RAW: ("KLr", 1.0),
    KL_AFTER: ("KLa", 1.0),
    PENALTY_REDUCTION: ("fb%", 100.0),
}


def stat_key(term: str, stat: str) -> str:
    """The logged key of ``term``'s ``stat``: ``kl.kl_raw``."""
    return f"{term}.{stat}"
