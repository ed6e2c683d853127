import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from termwise.data.splits import chronological_split, group_split, make_split
from termwise.probes.target import describe_entropy, infer_kind, summarize_target


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=20, max_size=200), st.floats(0.1, 0.5))
def test_chronological_split_never_trains_on_later_rows(times, fraction):
    times = np.array(times, dtype=float)
    train, test = chronological_split(times, fraction)
    assert len(test) > 0
    if len(train):
        assert times[train].max() < times[test].min()
    assert len(set(train) | set(test)) == len(times) and not set(train) & set(test)


def test_purge_drops_rows_whose_label_reaches_into_test():
    times = np.arange(100, dtype=float)
    train, test = chronological_split(times, 0.2, label_end=times + 5)
    assert times[train].max() + 5 < times[test].min()


def test_group_split_keeps_groups_apart():
    groups = np.repeat(np.array(list("abcdefghij")), 10)
    train, test = group_split(groups, 0.3, seed=0)
    assert not set(groups[train]) & set(groups[test]) and len(set(groups[test])) == 3


def test_time_and_group_together():
    times = np.arange(60, dtype=float)
    groups = np.array(["a", "b", "c"] * 20)
    train, test, how = make_split(60, 0.25, 0, times=times, groups=groups)
    assert "chronological" in how and len(train) == 0  # every group runs into the test period


def test_target_summary_and_entropy_wording():
    summary = summarize_target(np.array([0, 1] * 50), "binary")
    assert summary.entropy == pytest.approx(np.log(2)) and summary.baseline == 0.5
    assert "balanced" in summary.description
    assert "says nothing about whether the features predict it" in summary.description
    assert "random" not in summary.description
    assert "imbalanced" in describe_entropy(0.2, np.log(2), 0.95)
    assert infer_kind(np.array([0.1, 0.5, 0.3] * 20 + [float(i) for i in range(30)])) == (
        "regression"
    )
    assert infer_kind(np.array(["a", "b", "c"])) == "multiclass"
