import pytest

from termwise.data.batching import length_batches, pad


def test_pad_right_pads_with_mask():
    ids, mask = pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_length_batches_sorts_longest_first_and_caps_rows():
    lengths = [3, 9, 1, 7, 5]
    batches = list(length_batches(lengths, batch_size=2))
    assert batches == [[1, 3], [4, 0], [2]]


@pytest.mark.parametrize("max_tokens", [10, 16, 40])
def test_length_batches_respect_the_token_budget(max_tokens):
    lengths = [8, 8, 4, 4, 4, 4, 2, 2, 2, 2, 2, 20]
    batches = list(length_batches(lengths, batch_size=100, max_tokens=max_tokens))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= max_tokens or len(batch) == 1  # an over-long row goes alone
    assert batches[0] == ([11, 0] if max_tokens == 40 else [11])  # 20 tokens: alone if > budget
    if max_tokens == 16:
        assert batches[1:3] == [[0, 1], [2, 3, 4, 5]]
