"""``termwise.pref.load(DIR).probability(...)``: the preference model's load API (see
recipes/pref)."""

from termwise.recipes.pref.calibration import Calibration, probabilities
from termwise.recipes.pref.score import PreferenceScorer, load, predict_pairs

__all__ = ["Calibration", "PreferenceScorer", "load", "predict_pairs", "probabilities"]
