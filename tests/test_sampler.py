from pixtrans.data.sampler import StepBatchSampler


def take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_each_epoch_is_a_permutation_and_epochs_differ():
    s = StepBatchSampler(10, 2, seed=3)
    batches = take(s, 10)
    e0 = sorted(i for b in batches[:5] for i, _ in b)
    e1 = [i for b in batches[5:] for i, _ in b]
    assert e0 == list(range(10)) and sorted(e1) == list(range(10))
    assert [i for b in batches[:5] for i, _ in b] != e1


def test_start_step_resumes_the_same_sequence():
    full = take(StepBatchSampler(7, 2, seed=1), 12)
    resumed = take(StepBatchSampler(7, 2, seed=1, start_step=5), 7)
    assert resumed == full[5:]


def test_ranks_split_an_epoch_without_overlap():
    r0 = take(StepBatchSampler(8, 2, seed=0, rank=0, world_size=2), 2)
    r1 = take(StepBatchSampler(8, 2, seed=0, rank=1, world_size=2), 2)
    ids = [i for b in r0 + r1 for i, _ in b]
    assert sorted(ids) == list(range(8))
    seeds = [s for b in r0 + r1 for _, s in b]
    assert len(set(seeds)) == 8
