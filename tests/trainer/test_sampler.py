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
    whole = EpochSampler(11, seed=0)
    shards = [EpochSampler(11, seed=0, rank=r, world_size=2) for r in range(2)]
    for shard in shards:
        shard.set_epoch(0, start=2)
    merged = [i for pair in zip(*map(list, shards), strict=False) for i in pair]
    merged += list(shards[0])[len(list(shards[1])) :]
    assert merged == list(whole)[2:]
    assert sum(len(s) for s in shards) == 9
