import numpy as np
import pytest
import torch

from termwise.models.lexical import pack_bags
from termwise.models.tfidf_logistic import (
    TfidfLogistic,
    document_frequency_idf,
    fit_logistic,
    tfidf_matrix,
)

BUCKETS = 12
BAGS = [[1, 1, 1, 2], [2, 3], [0], [5, 5, 2, 7, 1], [4]]  # 4: in one bag only


def explicit_rows(bags, idf):
    """scikit-learn's sublinear tf-idf, row by row, as a dense array."""
    out = np.zeros((len(bags), len(idf)))
    for i, bag in enumerate(bags):
        ids, counts = np.unique(bag, return_counts=True)
        values = (1 + np.log(counts)) * idf[ids]
        norm = np.linalg.norm(values)
        out[i, ids] = values / norm if norm > 0 else values
    return out


def test_idf_is_smoothed_and_drops_rare_buckets():
    idf = document_frequency_idf(BAGS, BUCKETS, min_df=2)
    frequency = {1: 2, 2: 3}
    for bucket, df in frequency.items():
        assert idf[bucket] == pytest.approx(np.log(6 / (1 + df)) + 1, rel=1e-6)
    assert idf[4] == 0 and idf[3] == 0 and idf[11] == 0  # in one bag, or none
    assert (document_frequency_idf(BAGS, BUCKETS, min_df=1)[[3, 4]] > 0).all()


def test_matrix_is_sublinear_normalised_tfidf():
    idf = document_frequency_idf(BAGS, BUCKETS, min_df=1)
    matrix = tfidf_matrix(BAGS, idf).toarray()
    np.testing.assert_allclose(matrix, explicit_rows(BAGS, idf), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, rtol=1e-5)


def test_a_bag_of_dropped_buckets_is_a_zero_row():
    idf = document_frequency_idf(BAGS, BUCKETS, min_df=2)
    matrix = tfidf_matrix(BAGS, idf).toarray()
    assert not matrix[4].any() and not matrix[2].any()  # bucket 0 and 4: one bag each


def test_module_scores_as_the_matrix_times_the_weights():
    idf = document_frequency_idf(BAGS, BUCKETS, min_df=1)
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(BUCKETS, 3)), rng.normal(size=3)
    module = TfidfLogistic(BUCKETS, 3)
    module.set(idf, weight, bias)
    ids, offsets = pack_bags(BAGS)
    with torch.no_grad():
        scores = module(ids, offsets).double().numpy()
    expected = tfidf_matrix(BAGS, idf) @ weight + bias
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    assert not list(module.parameters())  # nothing for an optimiser to move
    assert set(module.state_dict()) == {"idf", "weight", "bias"}


def test_fit_ranks_by_the_informative_bucket_and_skips_one_class_outputs():
    rng = np.random.default_rng(1)
    bags = [list(rng.integers(4, BUCKETS, size=6)) + ([3] if i % 2 else []) for i in range(80)]
    labels = np.stack([np.arange(80) % 2 == 1, np.zeros(80, dtype=bool)], axis=1)
    features = tfidf_matrix(bags, document_frequency_idf(bags, BUCKETS, min_df=1))
    coef, intercept = fit_logistic(features, labels, np.ones(labels.shape), inverse_l2=4.0)
    logits = features @ coef[:, 0] + intercept[0]
    assert logits[labels[:, 0]].min() > logits[~labels[:, 0]].max()
    assert coef[3, 0] == coef[:, 0].max()
    assert not coef[:, 1].any() and intercept[1] == 0  # no positive: left at zero


def test_fit_reads_only_weighted_rows_and_their_weights():
    bags = [[1], [1], [2], [2], [1]]
    labels = np.array([[True], [True], [False], [False], [False]])
    features = tfidf_matrix(bags, document_frequency_idf(bags, BUCKETS, min_df=1))
    everything = np.ones(labels.shape)
    without_last = everything.copy()
    without_last[4] = 0.0  # a bucket-1 negative left out: bucket 1 is then pure positive
    heavier_last = everything.copy()
    heavier_last[4] = 3.0  # counted three times: bucket 1 less positive
    coef_all, _ = fit_logistic(features, labels, everything, 4.0)
    coef_some, _ = fit_logistic(features, labels, without_last, 4.0)
    coef_heavy, _ = fit_logistic(features, labels, heavier_last, 4.0)
    assert coef_some[1, 0] > coef_all[1, 0] > coef_heavy[1, 0]


def test_fit_over_the_used_buckets_is_the_fit_over_all_of_them():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    bags = [list(rng.integers(0, 6, size=5)) + ([7] if i % 3 else []) for i in range(40)]
    labels = (np.arange(40) % 3 != 0)[:, None] ^ (np.arange(40) % 5 == 0)[:, None]
    features = tfidf_matrix(bags, document_frequency_idf(bags, BUCKETS, min_df=1))
    coef, intercept = fit_logistic(features, labels, np.ones(labels.shape), 4.0)
    full = LogisticRegression(C=4.0, max_iter=2000).fit(features, labels[:, 0])
    assert not coef[8:, 0].any()  # buckets no bag holds
    np.testing.assert_allclose(coef[:, 0], full.coef_[0], atol=1e-4)
    np.testing.assert_allclose(intercept[0], full.intercept_[0], atol=1e-4)
