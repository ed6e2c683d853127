import numpy as np
import orjson
import pytest
import torch
from transformers import AutoTokenizer

from termwise.errors import TermwiseUserError
from termwise.models.backbone import LexicalConfig
from termwise.models.lexical import ngram_bags, pack_bags
from termwise.models.tfidf_logistic import document_frequency_idf, fit_logistic, tfidf_matrix
from termwise.recipes.btrm.data import build_table
from termwise.recipes.btrm.logistic_fit import (
    balanced_weights,
    document_fold,
    fit_tfidf_logistic,
)
from termwise.recipes.btrm.model import load_reward_model, save_reward_model
from termwise.recipes.btrm.recipe import build_model

from .test_config_data import small_config


def fitted(tmp_path, tiny_bert, **lexical):
    directory = tmp_path / f"config{len(list(tmp_path.iterdir()))}"  # one per call
    directory.mkdir()
    config = small_config(
        directory, lexical=LexicalConfig(buckets=4096, **lexical), max_rows_per_source=40
    )
    table = build_table(config)
    model = build_model(config, tiny_bert)
    settings = config.lexical  # bags even without a branch: the fit must still say no
    bags = ngram_bags(table.texts, settings.buckets, settings.word_ngrams, settings.max_words)
    rows = table.split(heldout=False)
    report = fit_tfidf_logistic(model, table, bags, rows, config)
    return config, table, model, bags, rows, report


def test_folds_keep_documents_together_and_are_stable():
    groups = np.array(["a|1", "a|1", "a|2", "b|x", "b|x", "b|y"] * 20)
    fold = document_fold(groups, 2)
    for group in np.unique(groups):
        assert len(set(fold[groups == group])) == 1
    assert np.array_equal(fold, document_fold(groups, 2))
    assert set(fold) <= {0, 1}


def test_balanced_weights_give_both_classes_the_same_total():
    positive = np.array([[True, False], [False, False], [False, True], [False, False]])
    negative_weight = np.array([[0.0, 2.0], [2.0, 1.0], [1.0, 0.0], [0.0, 0.0]], np.float32)
    weights = balanced_weights(positive, negative_weight)
    np.testing.assert_allclose(weights[:, 0], [3.0, 2.0, 1.0, 0.0])  # one positive: 2 + 1
    np.testing.assert_allclose(weights[:, 1], [2.0, 1.0, 3.0, 0.0])
    assert (weights[3] == 0).all()  # neither: not fitted


def test_table_records_each_rows_document(tmp_path):
    table = build_table(small_config(tmp_path, max_rows_per_source=40))
    assert len(table.group) == len(table.texts)
    assert all(
        group.startswith(source) for group, source in zip(table.group, table.source, strict=True)
    )


def test_fitted_regression_is_added_scaled_and_centred(tmp_path, tiny_bert):
    config, table, model, bags, rows, report = fitted(tmp_path, tiny_bert, logistic_weight=0.5)
    assert report is not None and model.heads.logistic is not None
    logistic = model.heads.logistic
    # The installed weights are 0.5 x the regression fitted on the training rows.
    idf = document_frequency_idf([bags[i] for i in rows], 4096, config.lexical.logistic_min_df)
    features = tfidf_matrix([bags[i] for i in rows], idf)
    labels = table.positive[rows]
    weights = balanced_weights(
        labels, table.negative_weight(config.tier_weights.model_dump())[rows]
    )
    coef, intercept = fit_logistic(features, labels, weights, 4.0)
    assert torch.equal(logistic.idf, torch.from_numpy(idf))
    torch.testing.assert_close(logistic.weight, torch.from_numpy(0.5 * coef))
    expected_bias = torch.from_numpy(0.5 * (intercept - report.centre)).float()
    torch.testing.assert_close(logistic.bias, expected_bias)
    # Out of fold, positives score lower than the fitted model scores its own training rows.
    with torch.no_grad():
        ids, offsets = pack_bags([bags[i] for i in rows])
        own = logistic(ids, offsets).numpy() / 0.5 + report.centre
    for h in range(len(table.heads)):
        assert report.centre[h] < np.median(own[labels[:, h], h])
    assert all(h in report.summary(table.heads) for h in table.heads)


def test_out_of_fold_part_of_training_rows_is_centred_on_their_positives(tmp_path, tiny_bert):
    config, table, model, bags, rows, report = fitted(tmp_path, tiny_bert, logistic_weight=0.5)
    assert report is not None and np.array_equal(report.rows, rows)
    assert report.out_of_fold.shape == (len(rows), len(table.heads))
    labels = table.positive[rows]
    for h in range(len(table.heads)):
        # a typical training positive gets about nothing from the regression out of fold
        assert np.median(report.out_of_fold[labels[:, h], h]) == pytest.approx(0.0, abs=1e-9)
    with torch.no_grad():
        ids, offsets = pack_bags([bags[i] for i in rows])
        installed = model.heads.logistic(ids, offsets).numpy()
    # in sample the regression is surer of its own positives than out of fold
    for h in range(len(table.heads)):
        positives = labels[:, h]
        assert (installed[positives, h] > report.out_of_fold[positives, h]).mean() > 0.5


def test_off_when_weight_is_zero_or_no_branch(tmp_path, tiny_bert):
    *_, model, _, _, report = fitted(tmp_path, tiny_bert, logistic_weight=0.0)
    assert report is None and model.heads.logistic is None
    *_, model, _, _, report = fitted(tmp_path, tiny_bert, enabled=False)
    assert report is None and model.heads.logistic is None


def test_model_with_the_regression_reloads_identically(tmp_path, tiny_bert):
    config, table, model, _, _, _ = fitted(tmp_path, tiny_bert)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = table.texts[:4]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        before = model.score_batch(batch["input_ids"], batch["attention_mask"], model.bags(texts))
        model.heads.logistic, fitted_logistic = None, model.heads.logistic
        without = model.score_batch(batch["input_ids"], batch["attention_mask"], model.bags(texts))
        model.heads.logistic = fitted_logistic
    assert not torch.equal(before, without)  # the regression moves the scores
    manifest = {"backbone_path": str(tiny_bert), "meta_prompt": "Which?", "max_length": 32}
    save_reward_model(model, tokenizer, tmp_path / "saved", manifest)
    loaded, _, saved = load_reward_model(tmp_path / "saved")
    assert saved.tfidf_logistic and loaded.heads.logistic is not None
    with torch.no_grad():
        after = loaded.score_batch(batch["input_ids"], batch["attention_mask"], loaded.bags(texts))
    assert torch.equal(before, after)


def test_a_manifest_claiming_a_regression_the_weights_lack_is_a_user_error(tmp_path, tiny_bert):
    *_, model, _, _, _ = fitted(tmp_path, tiny_bert, logistic_weight=0.0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    manifest = {"backbone_path": str(tiny_bert), "meta_prompt": "Which?", "max_length": 32}
    save_reward_model(model, tokenizer, tmp_path / "saved", manifest)
    path = tmp_path / "saved" / "termwise_reward.json"
    saved = orjson.loads(path.read_bytes())
    assert saved["tfidf_logistic"] is False
    path.write_bytes(orjson.dumps({**saved, "tfidf_logistic": True}))
    with pytest.raises(TermwiseUserError, match="not matching the manifest"):
        load_reward_model(tmp_path / "saved")
