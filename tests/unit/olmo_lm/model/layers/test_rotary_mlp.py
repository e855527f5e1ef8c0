import math

import pytest
import torch

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.model.layers.mlp import swiglu_hidden_size
from olmo_lm.model.layers.rotary import RopeScalingConfig, RotaryEmbedding, inverse_frequencies


@pytest.mark.parametrize(
    "d, multiplier, multiple_of, hidden",
    [
        (4096, None, 256, 11008),
        (2048, 1.5, 256, 8192),
        (5120, None, 256, 13824),
        (128, None, 256, 512),
    ],
)
def test_olmo_hidden_size_rule(d, multiplier, multiple_of, hidden):
    assert swiglu_hidden_size(d, multiplier, multiple_of) == hidden


def test_yarn_keeps_fast_dimensions_and_slows_slow_ones():
    plain, _ = inverse_frequencies(128, 500_000.0)
    s = RopeScalingConfig(kind="yarn", factor=8.0, original_max_seq_len=8192)
    scaled, attn = inverse_frequencies(128, 500_000.0, s)
    torch.testing.assert_close(scaled[:4], plain[:4])  # many turns over 8k: extrapolated
    torch.testing.assert_close(scaled[-4:], plain[-4:] / 8)  # few turns: interpolated
    assert attn == pytest.approx(0.1 * math.log(8) + 1)


def test_linear_and_llama3_scalings():
    plain, _ = inverse_frequencies(64, 10_000.0)
    lin, _ = inverse_frequencies(64, 10_000.0, RopeScalingConfig(kind="linear", factor=4.0))
    torch.testing.assert_close(lin, plain / 4)
    l3, _ = inverse_frequencies(
        64, 10_000.0, RopeScalingConfig(kind="llama3", factor=8.0, original_max_seq_len=256)
    )
    wavelen = 2 * math.pi / plain
    assert torch.equal(l3[wavelen < 256 / 4], plain[wavelen < 256 / 4])
    torch.testing.assert_close(l3[wavelen > 256], plain[wavelen > 256] / 8)


def test_rotation_preserves_norm_and_relative_position():
    from olmo_lm.model.layers.rotary import apply_rotary

    rope = RotaryEmbedding(16, 10_000.0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(i, j):
        cq, sq = rope(torch.tensor([[i]]))
        ck, sk = rope(torch.tensor([[j]]))
        return (apply_rotary(q, cq, sq) * apply_rotary(k, ck, sk)).sum()

    torch.testing.assert_close(score(7, 3), score(107, 103), rtol=1e-4, atol=1e-4)
    cos, sin = rope(torch.tensor([[5]]))
    torch.testing.assert_close(apply_rotary(q, cos, sin).norm(), q.norm())


def test_unknown_scaling_is_refused():
    with pytest.raises(TrainCoreConfigError, match="unknown"):
        RopeScalingConfig(kind="ntk")
