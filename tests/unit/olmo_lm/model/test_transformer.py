import pytest
import torch

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.model.config import TransformerConfig

PRESETS = {"tiny": TransformerConfig.tiny}


@pytest.mark.parametrize("preset, published", [("olmo2_1B", 1.485e9), ("olmo2_7B", 7.30e9)])
def test_published_parameter_counts(preset, published):
    assert getattr(TransformerConfig, preset)().num_params() == pytest.approx(published, rel=0.01)


@pytest.mark.parametrize(
    "cfg",
    [
        TransformerConfig.tiny(),
        TransformerConfig(n_kv_heads=2),
        TransformerConfig(qk_norm=False, tie_embeddings=True),
    ],
)
def test_built_model_matches_counted_params_and_trains(cfg):
    torch.manual_seed(0)
    model = cfg.build()
    assert sum(p.numel() for p in model.parameters()) == cfg.num_params()
    ids = torch.randint(cfg.vocab_size, (2, 16))
    logits = model(ids)
    assert logits.shape == (2, 16, cfg.vocab_size)
    logits.mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_attention_is_causal():
    torch.manual_seed(0)
    model = TransformerConfig.tiny().build().eval()
    ids = torch.randint(256, (1, 12))
    changed = ids.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 256
    a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_sequence_longer_than_rotary_cache_is_refused():
    model = TransformerConfig(max_seq_len=8).build()
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_generate_is_seeded():
    torch.manual_seed(0)
    model = TransformerConfig.tiny().build().eval()
    prompt = torch.tensor([[72, 105]])
    a = model.generate(prompt, 5, generator=torch.Generator().manual_seed(1))
    b = model.generate(prompt, 5, generator=torch.Generator().manual_seed(1))
    assert a.shape == (1, 7) and torch.equal(a, b)
    greedy = model.generate(prompt, 5, temperature=0)
    assert torch.equal(greedy, model.generate(prompt, 5, temperature=0))


@pytest.mark.parametrize(
    "kwargs", [{"d_model": 130, "n_heads": 4}, {"n_heads": 4, "n_kv_heads": 3}]
)
def test_bad_shapes_are_refused(kwargs):
    with pytest.raises(TrainCoreConfigError):
        TransformerConfig(**kwargs)
