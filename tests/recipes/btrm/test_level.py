"""The score level: each head's unseen medians land at +1 / -1, rankings unchanged."""

import numpy as np
import torch

from termwise.config import load_yaml_config
from termwise.models.lexical import pack_bags
from termwise.recipes.btrm.after_training import score_training_rows
from termwise.recipes.btrm.config import BtrmConfig
from termwise.recipes.btrm.data import unseen_documents
from termwise.recipes.btrm.level import MIN_UNSEEN_DOCUMENTS, fit_level
from termwise.recipes.btrm.logistic_fit import fit_tfidf_logistic
from termwise.recipes.btrm.prepared import score_rows
from termwise.recipes.btrm.recipe import build_model, prepare

from .conftest import write_tiny_config


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
    flat, clear = level.summary(["flat", "clear"]).split("clear")
    assert "(kept raw: medians too close)" in flat
    assert "kept raw" not in clear


def test_training_rows_are_scored_with_the_regression_out_of_fold(tmp_path, tiny_bert):
    config = load_yaml_config(write_tiny_config(tmp_path, tiny_bert), BtrmConfig)
    prepared = prepare(config)
    table, bags = prepared.table, prepared.bags
    assert bags is not None
    model = build_model(config, tiny_bert).eval()
    rows = table.split(heldout=False)
    report = fit_tfidf_logistic(model, table, bags, rows, config)
    assert report is not None and model.heads.logistic is not None
    sample = rows[::3]
    own = score_rows(model, prepared, sample)  # the regression in sample
    out_of_fold = score_training_rows(model, prepared, sample, report)
    with torch.no_grad():
        ids, offsets = pack_bags([bags[i] for i in sample])
        installed = model.heads.logistic(ids, offsets).numpy()
    cap = model.logit_cap
    heads_part = cap * np.arctanh(own / cap) - installed  # the capped sum, undone
    position = np.searchsorted(rows, sample)
    expected = cap * np.tanh((heads_part + report.out_of_fold[position]) / cap)
    np.testing.assert_allclose(out_of_fold, expected, rtol=1e-3, atol=1e-3)
    assert model.heads.logistic is not None and model.logit_cap == cap  # put back
    # without a regression they are the model's own scores
    np.testing.assert_array_equal(score_training_rows(model, prepared, sample, None), own)


def test_a_head_with_few_unseen_documents_keeps_its_raw_scores_and_says_so():
    rng = np.random.default_rng(1)
    positive = rng.random((300, 2)) < 0.4
    scores = rng.normal(size=(300, 2)) + 3.0 * positive
    level = fit_level(scores, positive, ~positive, np.array([3, 40]))
    assert level.fitted.tolist() == [False, True]
    assert (level.scale[0], level.offset[0]) == (1.0, 0.0)
    few, many = level.summary(["few", "many"]).split("many")
    assert "kept raw: 3 unseen documents, a level needs 20" in few
    assert "kept raw" not in many
    assert level.summary(["few", "many"]).startswith("score level from 300 rows")


def test_a_summary_with_no_head_levelled_says_none_was_fitted():
    rng = np.random.default_rng(2)
    positive = rng.random((200, 2)) < 0.4
    scores = rng.normal(size=(200, 2)) + 3.0 * positive
    summary = fit_level(scores, positive, ~positive, np.array([3, 5])).summary(["a", "b"])
    assert summary.startswith("score level: none fitted, every head keeps its raw scores")
    assert "-> +1/-1" not in summary


def test_unseen_documents_count_the_positive_documents_kept_out(tmp_path, tiny_bert):
    from termwise.recipes.btrm.recipe import training_rows

    config = load_yaml_config(write_tiny_config(tmp_path, tiny_bert), BtrmConfig)
    config = config.model_copy(update={"train_on_unlevelled": False})  # every head's kept out
    table = prepare(config).table
    _, kept_out = training_rows(table, config)
    counts = unseen_documents(table, kept_out)
    for h in range(len(table.heads)):
        documents = {table.group[i] for i in kept_out if table.positive[i, h]}
        assert counts[h] == len(documents)
    assert counts.sum() > 0


def test_train_on_unlevelled_trains_on_the_raw_heads_kept_out_documents(tmp_path, tiny_bert):
    from termwise.recipes.btrm.recipe import training_rows

    config = load_yaml_config(write_tiny_config(tmp_path, tiny_bert), BtrmConfig)
    table = prepare(config).table
    keeping = config.model_copy(update={"train_on_unlevelled": False})
    train, kept_out = training_rows(table, keeping)
    returning = config.model_copy(update={"train_on_unlevelled": True})
    train_more, kept_fewer = training_rows(table, returning)
    assert len(kept_fewer) < len(kept_out)  # the tiny corpus has heads too small to level
    assert set(kept_fewer) <= set(kept_out)
    assert set(train_more) == set(train) | (set(kept_out) - set(kept_fewer))
    before, after = unseen_documents(table, kept_out), unseen_documents(table, kept_fewer)
    small = before < MIN_UNSEEN_DOCUMENTS
    assert (after[small] == 0).all() and (after[~small] == before[~small]).all()
