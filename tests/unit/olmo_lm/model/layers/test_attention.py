import math

import pytest
import torch

from olmo_lm.model.layers.attention import Attention, attention_mask, repeat_kv


class _Ctx:
    def __init__(self, t, b=2):
        self.positions = torch.arange(t).expand(b, t)
        self.key_positions = self.positions
        self.valid = None
        self.rope = {}

    def layer_cache(self, module):
        return None


def _reference(attn: Attention, x: torch.Tensor, window: int | None) -> torch.Tensor:
    """Eager attention with keys/values repeated per query head and an explicit mask."""
    b, t, _ = x.shape
    h, d = attn.n_heads, attn.head_dim
    q = attn.q_norm(attn.w_q(x)).view(b, t, h, d).transpose(1, 2)
    k = attn.k_norm(attn.w_k(x)).view(b, t, -1, d).transpose(1, 2)
    v = attn.w_v(x).view(b, t, -1, d).transpose(1, 2)
    k, v = repeat_kv(k, h // k.shape[1]), repeat_kv(v, h // v.shape[1])
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    i, j = torch.arange(t)[:, None], torch.arange(t)[None]
    allowed = j <= i
    if window is not None:
        allowed &= j > i - window
    probs = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    return attn.w_o((probs @ v).transpose(1, 2).reshape(b, t, -1))


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
@pytest.mark.parametrize("window", [None, 5])
def test_gqa_and_window_match_repeated_kv_reference(kv_heads, window):
    torch.manual_seed(0)
    attn = Attention(32, 4, kv_heads, 8, window=window, rope_kind=None).eval()
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, _Ctx(17)), _reference(attn, x, window))


def test_mask_from_positions_handles_padding_and_window():
    q = torch.tensor([[-1, 0, 1, 2]]).clamp_min(0)
    k = torch.tensor([[-1, 0, 1, 2]])
    valid = torch.tensor([[False, True, True, True]])
    m = attention_mask(q, k, window=2, q_valid=valid)[0, 0]
    assert m[0].all()  # a padding query may attend anywhere (its output is never used)
    assert m[1].tolist() == [False, True, False, False]
    assert m[3].tolist() == [False, False, True, True]  # window 2: itself and one back
