import torch

from earthplat.traincore.data import ResumableDataLoader, ResumableSampler


def test_permutation_depends_on_seed_and_epoch():
    data = range(50)
    a = ResumableSampler(data, seed=1)
    b = ResumableSampler(data, seed=1)
    assert list(a) == list(b)
    assert sorted(a) == list(range(50))
    b.set_epoch(1)
    assert list(a) != list(b)
    assert list(ResumableSampler(data, seed=2)) != list(a)


def test_ranks_partition_the_single_process_batches():
    data = range(64)
    single = list(ResumableDataLoader(data, batch_size=8, seed=3))
    r0 = list(
        ResumableDataLoader(
            data, batch_size=4, sampler=ResumableSampler(data, seed=3, num_replicas=2, rank=0)
        )
    )
    r1 = list(
        ResumableDataLoader(
            data, batch_size=4, sampler=ResumableSampler(data, seed=3, num_replicas=2, rank=1)
        )
    )
    assert len(single) == len(r0) == len(r1) == 8
    for s, a, b in zip(single, r0, r1):
        assert sorted(torch.cat([a, b]).tolist()) == sorted(s.tolist())


def test_uneven_dataset_gives_equal_rank_lengths():
    data = range(10)
    lengths = {
        len(ResumableSampler(data, num_replicas=3, rank=r, drop_last=False)) for r in range(3)
    }
    assert lengths == {4}
    assert all(
        len(list(ResumableSampler(data, num_replicas=3, rank=r, drop_last=False))) == 4
        for r in range(3)
    )


def test_state_dict_resumes_mid_epoch():
    data = range(40)
    full = [b.tolist() for b in ResumableDataLoader(data, batch_size=4, seed=5)]
    loader = ResumableDataLoader(data, batch_size=4, seed=5)
    loader.consumed_batches = 3
    state = loader.state_dict()
    fresh = ResumableDataLoader(data, batch_size=4, seed=5)
    fresh.load_state_dict(state)
    assert [b.tolist() for b in fresh] == full[3:]
    # the skip applies once: the next epoch is whole
    fresh.sampler.set_epoch(1)
    assert len(list(fresh)) == 10


def test_state_at_epoch_end_moves_to_next_epoch():
    data = range(16)
    loader = ResumableDataLoader(data, batch_size=4, seed=0)
    loader.consumed_batches = 4
    fresh = ResumableDataLoader(data, batch_size=4, seed=0)
    fresh.load_state_dict(loader.state_dict())
    expected = ResumableDataLoader(data, batch_size=4, seed=0)
    expected.sampler.set_epoch(1)
    assert [b.tolist() for b in fresh] == [b.tolist() for b in expected]


def test_batch_size_change_is_refused():
    loader = ResumableDataLoader(range(16), batch_size=4)
    other = ResumableDataLoader(range(16), batch_size=8)
    try:
        other.load_state_dict(loader.state_dict())
    except ValueError as e:
        assert "batch size" in str(e)
    else:
        raise AssertionError("a changed batch size must be refused")


def test_eval_shards_cover_every_sample_in_equal_lengths(monkeypatch):
    from earthplat.traincore import data as core_data
    from earthplat.traincore.data import EvalShardSampler

    def shards(n, world):
        out = []
        for rank in range(world):
            monkeypatch.setattr(core_data, "_data_parallel_rank_world", lambda r=rank: (r, world))
            out.append(list(EvalShardSampler(list(range(n)))))
            assert len(EvalShardSampler(list(range(n)))) == len(out[-1])
        return out

    even = shards(8, 2)
    assert even == [[0, 2, 4, 6], [1, 3, 5, 7]]  # a multiple of world: each sample once
    odd = shards(7, 3)
    assert [len(s) for s in odd] == [3, 3, 3]  # equal batch counts on every rank
    flat = [i for s in odd for i in s]
    assert set(flat) == set(range(7)) and len(flat) - 7 == 2  # world - 1 repeats at most
    assert [len(s) for s in shards(2, 3)] == [1, 1, 1]  # fewer samples than ranks
    monkeypatch.setattr(core_data, "_data_parallel_rank_world", lambda: (0, 1))
    assert list(EvalShardSampler(list(range(7)))) == list(range(7))  # one process
