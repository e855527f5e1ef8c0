"""Embeddings of real samples: batching does not change them, every model reference kind
resolves to the same encoder, and random baselines are seeded."""

from dataclasses import asdict

import numpy as np
import pytest
import torch

from earthplat.errors import EarthplatError
from earthplat.eval.embeddings import embed_patches, embed_pooled, load_embedder


@pytest.fixture(scope="module")
def samples(shared_data, tmp_path_factory):
    from earthplat.eval.benchmarks import load_benchmark

    data = load_benchmark(
        "slovenia_landcover",
        cache_dir=tmp_path_factory.mktemp("emb"),
        data_root=shared_data / "real",
    )
    return data.samples["train"][:4]  # real S2 L1C, 32 px, 3 periods


def test_batching_does_not_change_embeddings(samples):
    emb = load_embedder("random:pico")
    one = embed_pooled(emb, samples, patch_size=4, batch_size=1)
    many = embed_pooled(emb, samples, patch_size=4, batch_size=8)
    assert one.shape == (4, 64)
    np.testing.assert_allclose(one, many, atol=1e-5)
    fmap = embed_patches(emb, samples, patch_size=4, batch_size=3)
    assert fmap.shape == (4, 64, 8, 8)
    assert np.isfinite(fmap).all() and fmap.std() > 0


def test_random_baseline_is_seeded(samples):
    a = embed_pooled(load_embedder("random:pico", seed=0), samples, patch_size=8)
    b = embed_pooled(load_embedder("random:pico", seed=0), samples, patch_size=8)
    c = embed_pooled(load_embedder("random:pico", seed=1), samples, patch_size=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_export_and_pretrain_checkpoint_give_the_same_encoder(samples, tmp_path):
    from earthplat.nn.export import export_encoder

    emb = load_embedder("random:pico", seed=3)
    ref = embed_pooled(emb, samples, patch_size=8)
    export_encoder(emb.encoder, tmp_path / "export")
    cfg = asdict(emb.encoder.config)
    state = {f"encoder.{k}": v for k, v in emb.encoder.state_dict().items()}
    torch.save({"hyper_parameters": {"encoder": cfg}, "state_dict": state}, tmp_path / "p.ckpt")
    for ref_path in (tmp_path / "export", tmp_path / "p.ckpt"):
        got = embed_pooled(load_embedder(str(ref_path)), samples, patch_size=8)
        np.testing.assert_allclose(got, ref, atol=1e-6)


@pytest.mark.parametrize("bad", ["random:huge", "/nonexistent/model"])
def test_bad_references_are_refused(bad):
    with pytest.raises(EarthplatError):
        load_embedder(bad)
