import pytest

from termwise.trainer import EpochSampler


def test_epochs_differ_and_are_reproducible():
    a, b = EpochSampler(20, seed=1), EpochSampler(20, seed=1)
    first = list(a)
    a.set_epoch(1)
    assert sorted(first) == list(range(20)) and list(a) != first
    b.set_epoch(1)
    assert list(b) == list(a)


def test_start_skips_consumed_examples_without_changing_order():
    full = EpochSampler(10, seed=3)
    full.set_epoch(2)
    resumed = EpochSampler(10, seed=3)
    resumed.set_epoch(2, start=4)
    assert list(resumed) == list(full)[4:] and len(resumed) == 6


def test_ranks_partition_the_epoch():
    whole = EpochSampler(12, seed=0)
    shards = [EpochSampler(12, seed=0, rank=r, world_size=2) for r in range(2)]
    for shard in shards:
        shard.set_epoch(0, start=2)
    merged = [i for pair in zip(*map(list, shards), strict=True) for i in pair]
    assert merged == list(whole)[2:]


@pytest.mark.parametrize(("size", "world"), [(11, 2), (7, 3), (1, 4), (9, 4)])
def test_uneven_counts_are_padded_so_every_rank_gets_the_same_number(size, world):
    shards = [EpochSampler(size, seed=5, rank=r, world_size=world) for r in range(world)]
    lengths = {len(s) for s in shards}
    assert len(lengths) == 1 and len(list(shards[0])) == len(shards[0])
    seen = [i for shard in shards for i in shard]
    assert set(seen) == set(range(size))  # every item at least once
    assert len(seen) == -(-size // world) * world  # padded with repeats, nothing more
    for shard in shards:  # a resumed position means the same on every rank
        shard.set_epoch(1, start=world)
    assert len({len(s) for s in shards}) == 1
