"""Every registered block kind, token mixer and feed-forward, tested through the registries."""

import itertools

import pytest
import torch

from olmo_lm.model.blocks import BLOCKS, FEED_FORWARDS, MIXERS
from olmo_lm.model.config import GatedDeltaNetConfig, MoEConfig, TransformerConfig

COMBOS = list(itertools.product(BLOCKS, MIXERS, FEED_FORWARDS))


def _config(block: str, mixer: str, ffn: str) -> TransformerConfig:
    return TransformerConfig(
        vocab_size=61,
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        max_seq_len=64,
        block=block,
        layer_types=[mixer, "full_attention"],
        sliding_window=5,
        ffn=ffn,
        moe=MoEConfig(n_experts=4, top_k=2, hidden=16),
        gdn=GatedDeltaNetConfig(head_k_dim=8, head_v_dim=8, chunk_size=4, block=block),
    )


@pytest.fixture(params=COMBOS, ids=["-".join(c) for c in COMBOS])
def model(request):
    torch.manual_seed(0)
    return _config(*request.param).build()


def test_forward_backward_reaches_every_parameter(model):
    ids = torch.randint(61, (2, 11))
    out = model(ids, return_output=True)
    assert out.logits.shape == (2, 11, 61)
    loss = out.logits.float().logsumexp(-1).mean()
    if out.router_stats:
        loss = loss + sum(s.lb_loss + s.z_loss for s in out.router_stats)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    assert sum(p.numel() for p in model.parameters()) == model.config.num_params()


def test_causal(model):
    model.eval()
    ids = torch.randint(61, (1, 12))
    changed = ids.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 61
    with torch.no_grad():
        a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :8], b[:, :8])
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_cached_decoding_equals_full_forward(model):
    model.eval()
    ids = torch.randint(61, (2, 14))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache(14)
        steps = [model(ids[:, :6], cache=cache)]
        steps += [model(ids[:, i : i + 1], cache=cache) for i in range(6, 14)]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-5, atol=1e-5)


def test_left_padding_changes_nothing(model):
    model.eval()
    ids = torch.randint(2, 61, (1, 9))
    padded = torch.cat((torch.zeros(1, 4, dtype=torch.long), ids), 1)
    mask = torch.cat((torch.zeros(1, 4), torch.ones(1, 9)), 1).long()
    with torch.no_grad():
        alone = model(ids)
        batched = model(padded, attention_mask=mask)[:, 4:]
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-5)


def test_unknown_kinds_are_refused():
    from earthplat.traincore.errors import TrainCoreConfigError

    with pytest.raises(TrainCoreConfigError, match="unknown"):
        TransformerConfig(layer_pattern=["mamba"])
    with pytest.raises(TrainCoreConfigError, match="unknown"):
        TransformerConfig(block="post_norm")
    with pytest.raises(TrainCoreConfigError, match="unknown"):
        TransformerConfig(ffn="kan")
