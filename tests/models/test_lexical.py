import zlib

import torch

from termwise.models.lexical import LexicalBranch, hashed_ngrams, pack_bags


def test_hashed_ngrams_are_crc32_of_words_and_bigrams():
    ids = hashed_ngrams("the  cat\nsat", buckets=1000, word_ngrams=2, max_words=100)
    grams = ["the", "cat", "sat", "the cat", "cat sat"]
    assert ids == [zlib.crc32(g.encode()) % 1000 for g in grams]


def test_hashed_ngrams_limits_and_empty_text():
    assert len(hashed_ngrams("a b c d", 1 << 20, word_ngrams=3, max_words=3)) == 3 + 2 + 1
    assert hashed_ngrams("   ", 64, 2, 10) == [0]


def test_pack_bags_offsets_follow_lengths():
    ids, offsets = pack_bags([[1, 2, 3], [4], [5, 6]])
    assert ids.tolist() == [1, 2, 3, 4, 5, 6]
    assert offsets.tolist() == [0, 3, 4]


def test_branch_starts_at_zero_and_averages_its_bag():
    branch = LexicalBranch(outputs=2, buckets=8, word_ngrams=1, max_words=10)
    ids, offsets = pack_bags([[1, 1, 3], [2]])
    assert torch.equal(branch(ids, offsets), torch.zeros(2, 2))
    with torch.no_grad():
        branch.bag.weight[1] = torch.tensor([3.0, 0.0])
        branch.bag.weight[3] = torch.tensor([0.0, 3.0])
    assert branch(ids, offsets)[0].tolist() == [2.0, 1.0]
