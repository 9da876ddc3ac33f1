"""The train sampler shared by every datamodule."""

def test_sampler_shards_one_permutation_across_ranks():
    """Under DDP, step k of R ranks of B reads exactly the items one process reads at step k with R·B."""
    from datamodules.base import SeededShuffleSampler

    n, ranks, b = 23, 2, 3
    single = list(SeededShuffleSampler(n, seed=5))
    shards = [list(SeededShuffleSampler(n, seed=5, num_replicas=ranks, rank=r)) for r in range(ranks)]
    assert all(len(s) == n // ranks for s in shards)  # equal counts: no rank waits for another
    for step in range(len(shards[0]) // b):
        together = sorted(i for s in shards for i in s[step * b : (step + 1) * b])
        assert together == sorted(single[step * ranks * b : (step + 1) * ranks * b])
    assert not set(shards[0]) & set(shards[1])
