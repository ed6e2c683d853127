"""The accuracy over subsets a model never trained on, apart from the overall figure."""

import pytest

from termwise.recipes.pref.eval import unseen_subset_accuracy


def evaluated(**subsets):
    """``category/subset=accuracy`` -> results' ``categories``."""
    categories: dict = {}
    for name, accuracy in subsets.items():
        category, subset = name.split("__")
        categories.setdefault(category, {"subsets": {}})["subsets"][subset] = {"accuracy": accuracy}
    return categories


def test_the_mean_is_over_the_subsets_outside_training_only():
    trained = {"chat": ["pandalm"], "safety": ["hh"]}
    results = evaluated(chat__pandalm=0.9, chat__mtbench=0.5, safety__hh=0.8, safety__xs=0.25)
    unseen = unseen_subset_accuracy(trained, results)
    assert unseen["subsets"] == ["chat/mtbench", "safety/xs"]
    assert unseen["mean_accuracy"] == pytest.approx(0.375)


def test_a_subset_name_seen_in_another_category_is_unseen_here():
    unseen = unseen_subset_accuracy({"chat": ["x"]}, evaluated(safety__x=0.5))
    assert unseen["subsets"] == ["safety/x"]


def test_no_figure_when_every_subset_was_trained_on_or_unnamed():
    unseen = unseen_subset_accuracy({"chat": ["a"]}, evaluated(chat__a=0.7, chat__all=0.1))
    assert unseen == {"recorded": True, "subsets": [], "mean_accuracy": None}


def test_a_model_saved_before_the_record_says_so():
    assert unseen_subset_accuracy(None, evaluated(chat__a=0.7)) == {"recorded": False}
