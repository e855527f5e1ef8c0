import pytest
import torch

from earthplat.nn.encoder import EncoderConfig
from earthplat.train.losses import infonce, patch_discrimination, patch_discrimination_reference
from earthplat.train.masking import MASKING_STRATEGIES, MaskingConfig
from tests.unit.earthplat.nn.data import make_inputs


@pytest.fixture(scope="module")
def tokens():
    torch.manual_seed(0)
    encoder = EncoderConfig.pico().build()
    return encoder.tokenize(make_inputs(b=4, t=4), patch_size=4)


@pytest.mark.parametrize("strategy", sorted(MASKING_STRATEGIES))
def test_masking_invariants(tokens, strategy):
    cfg = MaskingConfig(strategy=strategy, encode_ratio=0.5, decode_ratio=0.5)
    for seed in range(5):
        encode, decode = cfg(tokens, torch.Generator().manual_seed(seed))
        maps = tokens.layout.decode_only[None].expand_as(encode)
        assert not (encode & maps).any(), "maps are never encoded"
        assert not ((encode | decode) & tokens.missing).any(), "missing never encoded/decoded"
        assert not (encode & decode).any(), "encode and decode are disjoint"
        assert (decode | tokens.missing)[maps].all(), "present maps are always decoded"
        assert (encode.sum(1) >= 1).all()
        share = encode.sum(1) / (~tokens.missing & ~maps).sum(1).float()
        if strategy == "modality_cross":  # the ratio applies within the source band sets
            assert (share <= 0.5 + 1e-6).all() and (share > 0.05).all()
        else:
            assert ((share - 0.5).abs() < 0.15).all()


def test_masking_is_seeded(tokens):
    cfg = MaskingConfig("random")
    a = cfg(tokens, torch.Generator().manual_seed(1))
    b = cfg(tokens, torch.Generator().manual_seed(1))
    c = cfg(tokens, torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])


def _split_groups(encode, group, usable):
    """Per sample, how many groups are partly encoded and partly not."""
    counts = []
    for b in range(encode.shape[0]):
        split = 0
        for gid in group.unique():
            sel = (group == gid) & usable[b]
            if sel.any() and encode[b, sel].any() and not encode[b, sel].all():
                split += 1
        counts.append(split)
    return counts


@pytest.mark.parametrize("strategy", ["space", "time"])
def test_space_and_time_masking_keep_groups_whole(tokens, strategy):
    lay = tokens.layout
    enc, _ = MaskingConfig(strategy)(tokens, torch.Generator().manual_seed(0))
    group = lay.t if strategy == "time" else lay.row * 1000 + lay.col
    usable = ~tokens.missing & ~lay.decode_only[None]
    # whole groups go together; only the group at each sample's rounding boundary may split
    assert all(n <= 1 for n in _split_groups(enc, group, usable))
    random_enc, _ = MaskingConfig("random")(tokens, torch.Generator().manual_seed(0))
    assert max(_split_groups(random_enc, group, usable)) > 1  # the check can fail


def test_modality_cross_encodes_some_band_sets_and_decodes_others(tokens):
    enc, dec = MaskingConfig("modality_cross")(tokens, torch.Generator().manual_seed(3))
    lay = tokens.layout
    for b in range(enc.shape[0]):
        enc_sets = set(lay.bandset[enc[b]].tolist())
        dec_sets = set(lay.bandset[dec[b] & ~lay.decode_only].tolist())
        assert enc_sets and dec_sets and not (enc_sets & dec_sets)


def test_vectorised_loss_equals_naive_loop():
    g = torch.Generator().manual_seed(0)
    q = 200
    pred = torch.randn(q, 16, generator=g, requires_grad=True)
    target = torch.randn(q, 16, generator=g)
    sample = torch.randint(0, 5, (q,), generator=g)
    group = torch.randint(0, 3, (q,), generator=g)
    fast = patch_discrimination(pred, target, sample, group, tau=0.1)
    slow = patch_discrimination_reference(pred, target, sample, group, tau=0.1)
    torch.testing.assert_close(fast, slow)
    (gf,) = torch.autograd.grad(fast, pred)
    (gs,) = torch.autograd.grad(slow, pred)
    torch.testing.assert_close(gf, gs, rtol=1e-5, atol=1e-7)


def test_patch_discrimination_rewards_matching_targets():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(32, 16, generator=g)
    zeros = torch.zeros(32, dtype=torch.long)
    perfect = patch_discrimination(target * 3, target, zeros, zeros)
    shuffled = patch_discrimination(target[torch.randperm(32, generator=g)], target, zeros, zeros)
    assert perfect < shuffled


def test_infonce_prefers_aligned_views():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 16, generator=g)
    assert infonce(a, a + 0.01 * torch.randn(8, 16, generator=g)) < infonce(a, a.roll(1, 0))


def test_chunked_checkpointed_loss_equals_naive_loop(monkeypatch):
    from earthplat.train import losses

    monkeypatch.setattr(losses, "MAX_LOGITS", 16)  # forces one group per chunk
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(120, 8, generator=g, requires_grad=True)
    target = torch.randn(120, 8, generator=g)
    sample = torch.randint(0, 4, (120,), generator=g)
    group = torch.randint(0, 2, (120,), generator=g)
    fast = losses.patch_discrimination(pred, target, sample, group)
    slow = patch_discrimination_reference(pred, target, sample, group)
    torch.testing.assert_close(fast, slow)
    (gf,) = torch.autograd.grad(fast, pred)
    (gs,) = torch.autograd.grad(slow, pred)
    torch.testing.assert_close(gf, gs, rtol=1e-5, atol=1e-7)
