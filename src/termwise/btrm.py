"""``termwise.btrm.load(DIR).score([...])``: the reward model's load API (see recipes/btrm)."""

from termwise.recipes.btrm.score import SCORE_TOKENS, RewardScorer, encode, load, merge_lora

__all__ = ["SCORE_TOKENS", "RewardScorer", "encode", "load", "merge_lora"]
