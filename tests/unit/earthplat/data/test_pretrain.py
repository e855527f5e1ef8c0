"""OlmoEarth-style instance sampling and the pretraining data module
(``earthplat.data.pretrain``), on a pack of a small ingested dataset (see ``test_pack.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from earthplat.batch import collate
from earthplat.data.pack import PackedDataset, pack_dataset
from earthplat.data.pretrain import (
    InstanceKey,
    InstanceShape,
    PretrainDataConfig,
    PretrainDataModule,
    PretrainDataset,
    PretrainSampler,
    PretrainSamplingConfig,
    split_windows,
)
from earthplat.errors import EarthplatError, PretrainConfigError
from earthplat.sensors import normalize
from tests.unit.earthplat.data.data import build_dataset

MODALITIES = ("sentinel1", "sentinel2_l2a", "worldcover")


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pretrain")
    out = root / "pack.h5"
    pack_dataset(build_dataset(root), out)
    return out


def _draws(ds: PretrainDataset, epochs: int, batch_size: int = 2, seed: int = 0):
    sampler = PretrainSampler(ds, batch_size=batch_size, seed=seed)
    keys = []
    for e in range(epochs):
        sampler.set_epoch(e)
        keys += list(sampler)
    return keys


def _same_batch(a, b) -> bool:
    if a.window != b.window or a.patch_size != b.patch_size:
        return False
    return all(
        torch.equal(getattr(a.modalities[m], k), getattr(b.modalities[m], k))
        for m in a.modalities
        for k in ("data", "valid", "timestamps")
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_patch_size": 0},
        {"max_patch_size": 9},
        {"min_patch_size": 5, "max_patch_size": 4},
        {"token_budget": 0},
        {"min_periods": 0},
        {"min_periods": 3, "max_periods": 2},
        {"max_aspect_ratio": 0.5},
    ],
)
def test_sampling_config_is_validated(kwargs):
    with pytest.raises(PretrainConfigError):
        PretrainSamplingConfig(**kwargs)


def test_budget_too_small_for_one_patch_is_refused(packed: Path):
    # 1 patch x 1 period: S2 (1 band set) + S1 (1) + WorldCover (static, 1) = 3 tokens
    with pytest.raises(PretrainConfigError, match="token_budget=2"):
        PretrainDataset(packed, PretrainSamplingConfig(token_budget=2))
    PretrainDataset(packed, PretrainSamplingConfig(token_budget=3))


def test_draws_are_deterministic_per_seed(packed: Path):
    cfg = PretrainSamplingConfig(token_budget=100, seed=7)
    a = _draws(PretrainDataset(packed, cfg), epochs=3)
    b = _draws(PretrainDataset(packed, cfg), epochs=3)
    assert a == b
    ds_a, ds_b = PretrainDataset(packed, cfg), PretrainDataset(packed, cfg)
    for key in a[:6]:
        ia, ib = ds_a[key], ds_b[key]
        for m in MODALITIES:
            assert torch.equal(ia.modalities[m].data, ib.modalities[m].data)
    other = _draws(
        PretrainDataset(packed, PretrainSamplingConfig(token_budget=100, seed=8)), epochs=3, seed=8
    )
    assert [k.shape for k in a] != [k.shape for k in other]
    epochs = [[k.shape for k in a[i * 8 : (i + 1) * 8]] for i in range(3)]
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # shapes vary across epochs


@pytest.mark.parametrize("budget", [3, 20, 100, 2250])
def test_every_instance_respects_budget_patch_size_and_window(packed: Path, budget: int):
    ds = PretrainDataset(packed, PretrainSamplingConfig(token_budget=budget, seed=budget))
    sizes = ds.packed.sizes
    keys = _draws(ds, epochs=40, batch_size=4)
    for key in keys:
        s = key.shape
        assert 1 <= s.patch_size <= 8
        assert ds.sampler.tokens(s) <= budget
        tokens = s.grid_h * s.grid_w * (2 * s.num_periods + 1)  # S2, S1 per period; WC static
        assert tokens == ds.sampler.tokens(s)
        h, w = sizes[ds.indices[key.index]]
        assert s.crop_h <= h and s.crop_w <= w and 1 <= s.num_periods <= 3
    assert len({k.shape.patch_size for k in keys}) > 3
    for key in keys[::23]:  # read some: shapes are multiples of p
        item = ds[key]
        p = item.patch_size
        for m, d in item.modalities.items():
            t, _, h, w = d.data.shape
            assert (
                h % p == 0
                and w % p == 0
                and (h // p, w // p) == (key.shape.grid_h, key.shape.grid_w)
            )
            assert t == (1 if m == "worldcover" else key.shape.num_periods)


def test_large_budget_takes_the_largest_crop(packed: Path):
    ds = PretrainDataset(packed, PretrainSamplingConfig(token_budget=10_000, max_periods=1))
    for key in _draws(ds, epochs=5, batch_size=8):  # every batch holds the 24 px window
        s = key.shape
        assert s.grid_h == 24 // s.patch_size and s.grid_w == 32 // s.patch_size


def test_values_normalised_finite_and_masks_carried(packed: Path):
    ds = PretrainDataset(packed, PretrainSamplingConfig(token_budget=2250, seed=3))
    pd = PackedDataset(packed)
    seen_invalid = False
    for key in _draws(ds, epochs=3, batch_size=4):
        item = ds[key]
        s = key.shape
        for d in item.modalities.values():
            assert d.data.dtype == torch.float32 and torch.isfinite(d.data).all()
            assert d.valid.dtype == torch.bool
            assert torch.all(d.data[~d.valid[:, None].expand_as(d.data)] == 0)
            seen_invalid |= bool((~d.valid).any())
        # the instance is a crop of the packed window, normalised: some placement reproduces it
        raw = pd[item.index]["modalities"]["sentinel2_l2a"]
        got = item.modalities["sentinel2_l2a"]
        valid = got.valid.numpy()
        found = False
        for t0 in range(raw["data"].shape[0] - s.num_periods + 1):
            for r0 in range(raw["data"].shape[2] - s.crop_h + 1):
                for c0 in range(raw["data"].shape[3] - s.crop_w + 1):
                    ts, rs, cs = (
                        slice(t0, t0 + s.num_periods),
                        slice(r0, r0 + s.crop_h),
                        slice(c0, c0 + s.crop_w),
                    )
                    if not (
                        np.array_equal(raw["valid"][ts, rs, cs], valid)
                        and np.array_equal(raw["timestamps"][ts], got.timestamps)
                    ):
                        continue
                    crop = raw["data"][ts, :, rs, cs].astype(np.float32)
                    want = normalize(crop, "sentinel2_l2a", tuple(raw["bands"]))
                    found |= np.allclose(np.where(valid[:, None], want, 0), got.data, rtol=1e-6)
        assert found
    assert seen_invalid  # the fixture's nodata block and missing March period came through


def _module(packed: Path, workers: int, **kw) -> PretrainDataModule:
    cfg = PretrainDataConfig(
        path=str(packed),
        batch_size=2,
        num_workers=workers,
        val_fraction=0.2,
        sampling=PretrainSamplingConfig(token_budget=60, seed=5),
        **kw,
    )
    dm = PretrainDataModule(cfg)
    dm.setup("fit")
    return dm


def test_batches_do_not_depend_on_worker_count(packed: Path):
    serial = list(_module(packed, 0).train_dataloader())
    parallel = list(_module(packed, 2).train_dataloader())
    assert len(serial) == len(parallel) > 0
    assert all(_same_batch(a, b) for a, b in zip(serial, parallel))
    for batch in serial:
        s2 = batch.modalities["sentinel2_l2a"]
        assert s2.data.ndim == 5 and s2.valid.shape == s2.data[:, :, 0].shape
        assert s2.timestamps.shape[-1] == 3 and isinstance(batch.patch_size, int)


def test_train_loader_resumes_exactly(packed: Path):
    dm = _module(packed, 0)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(1)
    full = list(loader)
    assert len(full) >= 3
    loader.consumed_batches = 2  # what DataProgressCallback records after two batches
    state = loader.state_dict()
    resumed = _module(packed, 0).train_dataloader()
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == len(full) - 2
    assert all(_same_batch(a, b) for a, b in zip(full[2:], rest))


def test_split_is_by_window_and_deterministic(packed: Path):
    dm = _module(packed, 0)
    train, val = dm.train_set.indices, dm.val_set.indices
    assert val and not set(train) & set(val) and sorted(train + val) == list(range(8))
    names = dm.train_set.packed.names
    assert split_windows(names, 0.2, 5) == (train, val)
    # windows chosen by their hash keep their side when windows are added
    more = [*names, *(f"extra{i}" for i in range(20))]
    _, half = split_windows(names, 0.5, 5)
    _, more_half = split_windows(more, 0.5, 5)
    assert half and {names[i] for i in half} <= {more[i] for i in more_half}
    with pytest.raises(PretrainConfigError):
        split_windows(names, 1.0)


def test_val_loader_draws_the_same_crops_every_epoch(packed: Path):
    dm = _module(packed, 0)
    loader = dm.val_dataloader()
    first = list(loader)
    loader.sampler.set_epoch(3)
    assert all(_same_batch(a, b) for a, b in zip(first, list(loader)))


def test_collate_refuses_mixed_shapes(packed: Path):
    ds = PretrainDataset(packed, PretrainSamplingConfig())
    a = ds[InstanceKey(0, 0, InstanceShape(2, 2, 2, 1))]
    b = ds[InstanceKey(1, 0, InstanceShape(4, 1, 1, 1))]
    assert collate([a, a]).modalities["sentinel1"].data.shape[0] == 2
    with pytest.raises(EarthplatError, match="PretrainSampler"):
        collate([a, b])


def test_lightning_consumes_the_module(packed: Path, tmp_path: Path):
    import lightning as L

    class Probe(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def training_step(self, batch, batch_idx):
            x = batch.modalities["sentinel2_l2a"].data
            return (x.mean() - self.w) ** 2

        def validation_step(self, batch, batch_idx):
            self.log("v", batch.modalities["sentinel1"].data.mean(), batch_size=2)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        use_distributed_sampler=False,
    )
    trainer.fit(Probe(), datamodule=_module(packed, 0))
    assert trainer.global_step == 2
