"""Mixtures: proportions, up/down-sampling, exact resume, O(sources) state, documents."""

import json
from collections import Counter
from itertools import islice

import numpy as np
import pytest
import torch

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.data.corpora import code_documents, literature_documents, math_documents
from olmo_lm.data.documents import write_documents
from olmo_lm.data.mixture import MixtureConfig, MixtureDataset, SourceConfig
from olmo_lm.data.mixture_loader import MixtureDataLoader, MixtureSampler
from olmo_lm.data.permutation import FeistelPermutation
from olmo_lm.data.shards import TokenShard, tokenize_files

SEQ = 32


@pytest.fixture(scope="module")
def shards(shakespeare, tmp_path_factory):
    """Byte-tokenized shards of the three real domains: name -> shard folder."""
    root = tmp_path_factory.mktemp("mix")
    docs = {
        "literature": literature_documents(shakespeare),
        "code": code_documents(limit=8),
        "math": math_documents(6, seed=0),
    }
    out = {}
    for name, documents in docs.items():
        write_documents(root / "docs" / f"{name}.jsonl", documents)
        tokenize_files(root / "docs" / f"{name}.jsonl", None, root / name, progress=False)
        out[name] = root / name
    return out


def _mixture(shards, weights, **kw):
    sources = [SourceConfig(n, [str(shards[n])], w) for n, w in weights.items()]
    return MixtureConfig(sources, **kw)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 1000, 4097])
def test_feistel_is_a_permutation(n):
    perm = FeistelPermutation(n, key=12345)
    assert sorted(perm(i) for i in range(n)) == list(range(n))
    if n > 100:
        other = FeistelPermutation(n, key=54321)
        assert [perm(i) for i in range(50)] != [other(i) for i in range(50)]
        assert [perm(i) for i in range(50)] != list(range(50))


def test_proportions_hold_over_many_sequences(shards):
    weights = {"literature": 0.5, "code": 0.3, "math": 0.2}
    ds = MixtureDataset(_mixture(shards, weights, period=1000), SEQ, seed=3)
    counts = Counter(ds.locate(i)[0] for i in range(20_000))
    for s, w in enumerate(weights.values()):
        assert counts[s] / 20_000 == pytest.approx(w, abs=0.002)
    # and in any window of a period, not only on average: no long runs of one source
    first = Counter(ds.locate(i)[0] for i in range(200))
    assert all(abs(first[s] / 200 - w) < 0.1 for s, w in enumerate(weights.values()))
    assert ds.source_positions(20_000) == {"literature": 10_000, "code": 6_000, "math": 4_000}


def test_small_sources_repeat_and_large_ones_are_sampled(shards):
    ds = MixtureDataset(_mixture(shards, {"literature": 1, "math": 1}, period=2), SEQ, seed=0)
    lit, math = ds.sources
    n = 4 * math.num_sequences * 2
    seen = {0: Counter(), 1: Counter()}
    for i in range(n):
        s, k = ds.locate(i)
        seen[s][k] += 1
    # math (small): four full passes, each window exactly four times (a permutation per pass)
    assert set(seen[1]) == set(range(math.num_sequences)) and set(seen[1].values()) == {4}
    # literature (large): downsampled, never repeated
    assert max(seen[0].values()) == 1 and len(seen[0]) < lit.num_sequences
    report = {r["name"]: r for r in ds.describe(n)}
    assert report["math"]["repetitions"] == pytest.approx(4.0)
    assert report["literature"]["repetitions"] < 1


def test_instances_are_windows_of_the_sources(shards):
    ds = MixtureDataset(_mixture(shards, {"literature": 1, "code": 1}), SEQ, seed=1)
    streams = []
    for src in ds.sources:
        streams.append(np.concatenate([np.asarray(s.tokens) for s in src.shards]))
    for i in range(50):
        s, k = ds.locate(i)
        expected = streams[s][k * SEQ : k * SEQ + SEQ + 1].astype(np.int64)
        np.testing.assert_array_equal(ds[i].numpy(), expected)
        assert ds[i].shape == (SEQ + 1,)


def _batches(loader, n):
    return [b.clone() for b in islice(iter(loader), n)]


def test_resume_at_step_k_gives_the_uninterrupted_sequences(shards):
    cfg = _mixture(shards, {"literature": 0.6, "code": 0.3, "math": 0.1}, num_sequences=96)
    ds = MixtureDataset(cfg, SEQ, seed=7)
    full = MixtureDataLoader(ds, batch_size=8)
    reference = _batches(full, 12) + _batches(full, 12)  # epochs 0 and 1 (12 batches each)
    full.sampler.set_epoch(1)
    reference[12:] = _batches(full, 12)
    for k in (0, 5, 11):
        run = MixtureDataLoader(MixtureDataset(cfg, SEQ, seed=7), batch_size=8)
        _batches(run, k)
        run.consumed_batches = k  # what DataProgressCallback records before a checkpoint
        state = json.loads(json.dumps(run.state_dict()))  # through a checkpoint's storage
        resumed = MixtureDataLoader(MixtureDataset(cfg, SEQ, seed=7), batch_size=8)
        resumed.load_state_dict(state)
        got = _batches(resumed, 12 - k)
        resumed.sampler.set_epoch(1)
        got += _batches(resumed, 12)
        assert all(torch.equal(a, b) for a, b in zip(got, reference[k:], strict=True))
    assert not torch.equal(reference[0], reference[12])  # epoch 1 continues, not repeats


def test_data_parallel_ranks_split_the_single_process_order(shards):
    ds = MixtureDataset(_mixture(shards, {"literature": 1, "math": 1}, num_sequences=40), SEQ)
    single = list(MixtureSampler(ds, num_replicas=1, rank=0))
    ranks = [list(MixtureSampler(ds, num_replicas=2, rank=r)) for r in range(2)]
    assert sorted(ranks[0] + ranks[1]) == single and ranks[0][:3] == [0, 2, 4]


def test_state_is_small_and_does_not_grow_with_the_data(shards):
    small = MixtureDataset(_mixture(shards, {"code": 1, "math": 1}), SEQ)
    large = MixtureDataset(_mixture(shards, {"literature": 1, "math": 1}), SEQ)
    sizes = []
    for ds in (small, large):
        loader = MixtureDataLoader(ds, batch_size=4)
        loader.consumed_batches = 10
        state = loader.state_dict()
        assert set(state["source_positions"]) == {s.name for s in ds.config.sources}
        assert sum(state["source_positions"].values()) == 40
        sizes.append(len(json.dumps(state)))
    assert len(large) > 20 * len(small)
    assert abs(sizes[0] - sizes[1]) < 40 and max(sizes) < 400  # O(sources), not O(instances)
    assert not isinstance(MixtureSampler(large).indices(), list)  # the order is never built


def test_resuming_onto_another_mixture_is_refused(shards):
    a = MixtureDataLoader(
        MixtureDataset(_mixture(shards, {"code": 1, "math": 1}), SEQ), batch_size=2
    )
    b = MixtureDataLoader(
        MixtureDataset(_mixture(shards, {"code": 1, "math": 2}), SEQ), batch_size=2
    )
    with pytest.raises(TrainCoreConfigError, match="different mixture"):
        b.load_state_dict(a.state_dict())


def test_document_ids_follow_eos(shards):
    ds = MixtureDataset(_mixture(shards, {"math": 1}), SEQ)
    eos = TokenShard.open(next(shards["math"].glob("*.json"))).meta["eos_id"]
    for i in range(20):
        out = ds.sequence_with_documents(i)
        ids, doc = out["input_ids"].numpy(), out["doc_ids"].numpy()
        # a new document starts exactly after each EOS
        np.testing.assert_array_equal(np.diff(doc), (ids[:-1] == eos).astype(np.int64))
        cu = out["cu_seqlens"].numpy()
        assert cu[0] == 0 and cu[-1] == SEQ and len(cu) == doc[SEQ - 1] + 2


def test_mixture_yaml_resolves_paths_from_its_folder(shards, tmp_path):
    yaml_path = shards["math"].parent / "mix.yaml"
    yaml_path.write_text("sources:\n  - {name: math, paths: [math], weight: 1}\nperiod: 10\n")
    cfg = MixtureConfig.from_yaml(yaml_path)
    assert cfg.sources[0].paths == [str(shards["math"])] and cfg.period == 10
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: []\nweights: 1\n")
    with pytest.raises(TrainCoreConfigError, match="unknown mixture keys"):
        MixtureConfig.from_yaml(bad)
    with pytest.raises(TrainCoreConfigError, match="weight"):
        SourceConfig("x", ["p"], 0.0)


def test_document_masked_items_and_batches(shards):
    """``documents=True`` (``--data.document_masking``): items carry the window's doc ids and
    batch into what ``CausalLMModule`` trains on with masking."""
    from olmo_lm.model.config import TransformerConfig
    from olmo_lm.train.pretrain import CausalLMModule

    seq = 256  # longer than a math worksheet: rows hold several documents
    cfg = _mixture(shards, {"literature": 1, "math": 1})
    plain, docs = MixtureDataset(cfg, seq, seed=2), MixtureDataset(cfg, seq, seed=2, documents=True)
    for i in range(10):
        item, ref = docs[i], plain.sequence_with_documents(i)
        assert torch.equal(item["input_ids"], plain[i])
        assert torch.equal(item["doc_ids"], ref["doc_ids"])
    batch = next(iter(MixtureDataLoader(docs, batch_size=8)))
    assert batch["input_ids"].shape == batch["doc_ids"].shape == (8, seq + 1)
    assert bool((batch["doc_ids"].amax(1) > 0).any())  # some rows hold several documents
    torch.manual_seed(0)
    module = CausalLMModule(TransformerConfig.tiny(), seq)
    masked, _ = module.loss_terms(batch)
    unmasked, _ = module.loss_terms(batch["input_ids"])
    assert torch.isfinite(masked) and masked.item() != pytest.approx(unmasked.item(), abs=1e-6)
    assert module.tokens_in_batch(batch) == 8 * seq and module.samples_in_batch(batch) == 8
