import pytest
import torch

from olmo_lm.model.cache import RecurrentState
from olmo_lm.model.layers.gated_deltanet import (
    GatedDeltaNet,
    chunked_gated_delta_rule,
    recurrent_gated_delta_rule,
)
from olmo_lm.model.layers.norm import l2_normalize


def _inputs(b=2, h=3, t=45, dk=8, dv=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = l2_normalize(torch.randn(b, h, t, dk, generator=g)) * dk**-0.5
    k = l2_normalize(torch.randn(b, h, t, dk, generator=g))
    v = torch.randn(b, h, t, dv, generator=g)
    decay = -torch.rand(b, h, t, generator=g) * 3  # log decay <= 0
    beta = torch.rand(b, h, t, generator=g) * 2  # [0, 2]: negative eigenvalues allowed
    state = torch.randn(b, h, dk, dv, generator=g)
    return q, k, v, decay, beta, state


@pytest.mark.parametrize("chunk", [1, 7, 16, 64])
@pytest.mark.parametrize("with_state", [False, True])
def test_chunked_and_recurrent_forms_agree(chunk, with_state):
    q, k, v, decay, beta, state = _inputs()
    state = state if with_state else None
    o_rec, s_rec = recurrent_gated_delta_rule(q, k, v, decay, beta, state)
    o_chunk, s_chunk = chunked_gated_delta_rule(q, k, v, decay, beta, state, chunk_size=chunk)
    torch.testing.assert_close(o_chunk, o_rec, rtol=0, atol=1e-5)
    torch.testing.assert_close(s_chunk, s_rec, rtol=0, atol=1e-5)


def test_delta_rule_stores_and_recalls_a_key():
    # with no decay and beta = 1, writing v under unit key k then reading with q = k returns v
    k = torch.zeros(1, 1, 1, 4)
    k[..., 0] = 1.0
    v = torch.arange(3.0).view(1, 1, 1, 3)
    o, s = recurrent_gated_delta_rule(k, k, v, torch.zeros(1, 1, 1), torch.ones(1, 1, 1))
    torch.testing.assert_close(o[0, 0, 0], v[0, 0, 0])
    # writing the same key again with a new value replaces (delta rule), not accumulates
    o2, _ = recurrent_gated_delta_rule(k, k, 2 * v, torch.zeros(1, 1, 1), torch.ones(1, 1, 1), s)
    torch.testing.assert_close(o2[0, 0, 0], 2 * v[0, 0, 0])


def test_layer_decoding_token_by_token_matches_prefill():
    torch.manual_seed(0)
    layer = GatedDeltaNet(32, 2, 4, 8, 16, chunk_size=8).eval()
    x = torch.randn(2, 21, 32)

    class Ctx:
        valid = None

        def __init__(self, state):
            self.state = state

        def layer_cache(self, module):
            return self.state

    with torch.no_grad():
        full = layer(x, Ctx(None))
        state = RecurrentState()
        steps = [layer(x[:, :13], Ctx(state))]
        steps += [layer(x[:, i : i + 1], Ctx(state)) for i in range(13, 21)]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=0, atol=1e-5)
    assert state.conv.shape == (2, 2 * 2 * 8 + 4 * 16, 3)  # kernel 4 keeps 3 inputs
    assert state.memory.shape == (2, 4, 8, 16)


def test_published_init_ranges():
    torch.manual_seed(0)
    layer = GatedDeltaNet(64, 4, 4, 16, 32)
    a = layer.A_log.exp()
    assert (a >= 0).all() and (a <= 16).all()
    dt = torch.nn.functional.softplus(layer.dt_bias)
    assert (dt >= 1e-4 - 1e-7).all() and (dt <= 0.1 + 1e-6).all()
