"""``embed_windows`` on real Sen1Floods11 windows, and its valid-pixel pooling."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from earthplat.errors import EarthplatError
from earthplat.inference.embeddings import embed_windows, pool_valid
from earthplat.nn.task_model import TaskSpec
from earthplat.sensors import S2_L1C_ORDER

S2 = "sentinel2_l1c"


def test_pool_valid_ignores_invalid_patches_and_weights_partial_ones():
    feats = torch.zeros(1, 2, 2, 2)
    feats[0, :, 0, 0] = torch.tensor([1.0, 2.0])  # fully valid patch
    feats[0, :, 0, 1] = torch.tensor([3.0, 6.0])  # half valid
    feats[0, :, 1, :] = 100.0  # invalid patches: must not count
    valid = torch.zeros(1, 4, 4, dtype=torch.bool)
    valid[0, :2, :2] = True
    valid[0, :2, 2] = True  # half of the second patch's 4 pixels
    pooled, weight = pool_valid(feats, valid)
    expected = (torch.tensor([1.0, 2.0]) * 1.0 + torch.tensor([3.0, 6.0]) * 0.5) / 1.5
    torch.testing.assert_close(pooled[0], expected)
    assert weight.tolist() == [1.5]
    vec, w = pool_valid(torch.ones(2, 3), torch.tensor([[[True]], [[False]]]))
    assert w.tolist() == [1.0, 0.0] and vec.shape == (2, 3)


class PatchMean(nn.Module):
    """A stand-in embedding model: the last period's bands averaged over 4 x 4 patches."""

    def __init__(self) -> None:
        super().__init__()
        self.spec = TaskSpec(
            task="embedding",
            inputs={S2: list(S2_L1C_ORDER)},
            num_outputs=len(S2_L1C_ORDER),
            patch_size=4,
            chip_size=32,
            head={"name": "identity"},
        )

    def forward(self, inputs):
        return F.avg_pool2d(inputs[S2].data[:, -1], 4)  # [B, C, h, w]


@pytest.fixture(scope="module")
def floods(shared_data, tmp_path_factory):
    from earthplat.eval.recipes import sen1floods11_water

    out = tmp_path_factory.mktemp("emb") / "ds"
    ds, windows, _ = sen1floods11_water(shared_data / "real" / "sen1floods11_spain", out, size=64)
    return ds, windows[:5]


def test_embed_windows_is_the_valid_weighted_mean_over_all_chips(floods):
    from earthplat.data.sample import load_sample

    ds, windows = floods
    calls = []
    one = embed_windows(
        PatchMean(),
        ds,
        windows,
        {"s2": S2},
        batch_size=1,
        progress=lambda d, n: calls.append((d, n)),
    )
    many = embed_windows(PatchMean(), ds, windows, {"s2": S2}, batch_size=16)
    assert one.names == [w.name for w in windows] and not one.empty
    np.testing.assert_allclose(one.vectors, many.vectors, rtol=1e-5, atol=1e-6)
    assert calls[-1] == (20, 20) and len(calls) == 20  # 5 windows x 4 chips of 32 px
    for name, vec in zip(one.names, one.vectors):  # the same number, computed directly
        m = load_sample(ds, name, {"s2": S2}).modalities[S2]
        x = torch.from_numpy(m.data[-1])[None].float()  # [1, C, H, W]
        valid = torch.from_numpy(m.valid).any(0)[None]  # [1, H, W]
        expected, _ = pool_valid(F.avg_pool2d(x, 4), valid)
        np.testing.assert_allclose(vec, expected[0].numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(one.vectors[0], one.vectors[1])


def test_embed_windows_names_a_missing_modality(floods):
    ds, windows = floods
    with pytest.raises(EarthplatError, match="lack"):
        embed_windows(PatchMean(), ds, windows, {})
    with pytest.raises(EarthplatError, match="does not read"):
        embed_windows(PatchMean(), ds, windows, {"s1": "sentinel1"})
