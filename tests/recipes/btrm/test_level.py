"""The score level: each head's unseen medians land at +1 / -1, rankings unchanged."""

import numpy as np

from termwise.recipes.btrm.level import fit_level


def test_the_medians_land_at_plus_and_minus_one_and_the_order_is_kept():
    rng = np.random.default_rng(0)
    positive = rng.random((400, 3)) < 0.3
    negative = ~positive
    scores = rng.normal(size=(400, 3)) + 2.5 * positive + np.array([0.0, 1.0, -3.0])
    level = fit_level(scores, positive, negative)
    mapped = scores * level.scale + level.offset
    for h in range(3):
        assert np.isclose(np.median(mapped[positive[:, h], h]), 1.0)
        assert np.isclose(np.median(mapped[negative[:, h], h]), -1.0)
        assert (np.argsort(mapped[:, h]) == np.argsort(scores[:, h])).all()


def test_a_head_it_cannot_judge_keeps_its_raw_scores():
    scores = np.array([[2.0, -1.0], [1.0, 0.0], [0.0, 3.0]])
    positive = np.array([[True, True], [True, False], [False, False]])
    negative = np.array([[False, False], [False, True], [False, True]])
    level = fit_level(scores, positive, negative)  # head 0: no negative; head 1: upside down
    assert level.scale.tolist() == [1.0, 1.0] and level.offset.tolist() == [0.0, 0.0]
    assert (
        np.isnan(level.negative_median[0]) and level.positive_median[1] < level.negative_median[1]
    )


def test_a_head_with_barely_separated_medians_keeps_its_raw_scores():
    scores = np.array([[0.50, 0.9], [0.49, 0.8], [0.45, -0.9], [0.44, -0.8]])
    positive = np.array([[True, True], [True, True], [False, False], [False, False]])
    level = fit_level(scores, positive, ~positive)
    assert level.fitted.tolist() == [False, True]
    assert (level.scale[0], level.offset[0]) == (1.0, 0.0)
    assert "(kept raw)" in level.summary(["flat", "clear"]).split("clear")[0]
    assert "(kept raw)" not in level.summary(["flat", "clear"]).split("clear")[1]
