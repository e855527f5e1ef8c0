"""Packing materialised windows into HDF5 and reading them back (``earthplat.data.pack``).

The fixture dataset goes through the real ingestion path: small UTM GeoTIFFs written with
rasterio, ingested with ``LocalSource`` + ``materialize``. The generator is in ``data.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from earthplat.batch import timestamps_of
from earthplat.data.dataset import Dataset
from earthplat.data.layer import read_layer_arrays
from earthplat.data.pack import PackedDataset, pack_dataset, pack_info
from earthplat.errors import DataError
from tests.unit.earthplat.data.data import LAYERS, NO_S1, SHORT, build_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Dataset:
    return build_dataset(tmp_path_factory.mktemp("pack"))


@pytest.fixture(scope="module")
def packed(dataset: Dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "all.h5"
    pack_dataset(dataset, out)
    return out


def test_fixture_goes_through_ingestion(dataset: Dataset):
    assert not dataset.layer_done(NO_S1, "s1")
    assert dataset.layer_metadata("w2", "s2")["missing_periods"] == [2]
    assert not read_layer_arrays(dataset, "w0", "s2").valid.all()


def test_round_trip_equals_read_layer_arrays(dataset: Dataset, packed: Path):
    pd = PackedDataset(packed)
    expected = [w.name for w in dataset.windows() if w.name != NO_S1]
    assert pd.names == expected
    for i, name in enumerate(pd.names):
        item = pd[i]
        assert item["window"] == name
        for layer, modality in LAYERS.items():
            ld = read_layer_arrays(dataset, name, layer)
            got = item["modalities"][modality]
            assert got["data"].dtype == ld.data.dtype
            np.testing.assert_array_equal(got["data"], ld.data)
            np.testing.assert_array_equal(got["valid"], ld.valid)
            assert got["valid"].dtype == bool
            np.testing.assert_array_equal(got["timestamps"], timestamps_of(ld.times))
            assert got["bands"] == ld.bands
        window = dataset.window(name)
        meta = pd.window_meta(i)
        assert meta["crs"] == window.crs
        assert meta["transform"] == pytest.approx(list(window.transform)[:6])
        assert (meta["height"], meta["width"]) == (window.height, window.width)


def test_windows_of_other_sizes_are_padded_and_cropped_back(dataset: Dataset, packed: Path):
    import h5py

    pd = PackedDataset(packed)
    i = pd.names.index(SHORT)
    assert pd[i]["modalities"]["sentinel2_l2a"]["data"].shape == (3, 4, 24, 32)
    with h5py.File(packed, "r", locking=False) as f:  # as PackedDataset opens it
        assert f["sentinel2_l2a/data"].shape == (8, 3, 4, 32, 32)
        assert f["sentinel2_l2a/data"].chunks == (1, 3, 4, 32, 32)
        assert not f["sentinel2_l2a/valid"][i, :, 24:].any()  # padding is invalid
        assert list(f["windows/size"][i]) == [24, 32]


def test_missing_layer_is_reported_not_silent(dataset: Dataset, tmp_path: Path, caplog):
    with caplog.at_level(logging.WARNING, logger="earthplat.data.pack"):
        info = pack_dataset(dataset, tmp_path / "p.h5")
    assert list(info.skipped) == [NO_S1]
    assert "s1" in info.skipped[NO_S1]
    assert NO_S1 in caplog.text
    assert info.num_windows == 8
    assert pack_info(tmp_path / "p.h5").skipped == info.skipped
    assert f"{NO_S1}: missing" in info.summary()
    # without s1 nothing is missing
    info = pack_dataset(
        dataset, tmp_path / "q.h5", layers={"s2": "sentinel2_l2a", "wc": "worldcover"}
    )
    assert info.skipped == {} and info.num_windows == 9
    assert set(info.modalities) == {"sentinel2_l2a", "worldcover"}


def test_interrupted_pack_leaves_nothing(dataset: Dataset, tmp_path: Path, monkeypatch):
    import earthplat.data.pack as pack_module

    calls = {"n": 0}
    real = pack_module.read_layer_arrays

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # like Ctrl-C half-way through
        return real(*args, **kwargs)

    monkeypatch.setattr(pack_module, "read_layer_arrays", failing)
    out = tmp_path / "sub" / "p.h5"
    with pytest.raises(KeyboardInterrupt):
        pack_dataset(dataset, out)
    assert calls["n"] == 5
    assert list(out.parent.iterdir()) == []


def test_existing_output_and_bad_options_are_refused(
    dataset: Dataset, packed: Path, tmp_path: Path
):
    with pytest.raises(DataError, match="overwrite=True"):
        pack_dataset(dataset, packed)
    with pytest.raises(DataError, match="compression"):
        pack_dataset(dataset, tmp_path / "p.h5", compression="zip")
    with pytest.raises(DataError, match="one layer per modality"):
        pack_dataset(
            dataset, tmp_path / "p.h5", layers={"s2": "sentinel2_l2a", "s2b": "sentinel2_l2a"}
        )
    with pytest.raises(DataError, match="no window"):
        pack_dataset(dataset, tmp_path / "p.h5", layers={"s1": "sentinel1"}, windows=[NO_S1])


def test_compressed_pack_round_trips(dataset: Dataset, packed: Path, tmp_path: Path):
    info = pack_dataset(dataset, tmp_path / "z.h5", compression="lzf", windows=["w0", "w1"])
    assert info.compression == "lzf" and info.num_windows == 2
    a, b = PackedDataset(tmp_path / "z.h5"), PackedDataset(packed)
    for i in range(2):
        for m, got in a[i]["modalities"].items():
            np.testing.assert_array_equal(got["data"], b[i]["modalities"][m]["data"])


def test_workers_open_their_own_handle(packed: Path):
    from torch.utils.data import DataLoader

    pd = PackedDataset(packed, modalities=["sentinel2_l2a"])
    direct = [pd[i] for i in range(len(pd))]  # opens a handle in this process before forking
    loader = DataLoader(
        pd, batch_size=None, num_workers=2, shuffle=False, multiprocessing_context="fork"
    )
    for want, got in zip(direct, loader):
        assert got["window"] == want["window"]
        np.testing.assert_array_equal(
            np.asarray(got["modalities"]["sentinel2_l2a"]["data"]),
            want["modalities"]["sentinel2_l2a"]["data"],
        )
    pd.close()


def test_read_crops_and_sample(packed: Path):
    pd = PackedDataset(packed)
    full = pd[0]["modalities"]
    part = pd.read(0, rows=slice(4, 12), cols=slice(8, 24), periods=slice(1, 3))["modalities"]
    np.testing.assert_array_equal(
        part["sentinel1"]["data"], full["sentinel1"]["data"][1:3, :, 4:12, 8:24]
    )
    np.testing.assert_array_equal(
        part["sentinel2_l2a"]["timestamps"], full["sentinel2_l2a"]["timestamps"][1:3]
    )
    assert part["worldcover"]["data"].shape == (1, 1, 8, 16)  # static: T stays 1
    sample = pd.sample(0)
    assert sample.window == "w0" and sample.height == 32
    assert set(sample.modalities) == {"sentinel1", "sentinel2_l2a", "worldcover"}
    with pytest.raises(IndexError):
        pd[len(pd)]


def test_pack_info_rejects_other_files(tmp_path: Path):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("x", data=[1])
    with pytest.raises(DataError, match="not an earthplat pack"):
        pack_info(tmp_path / "other.h5")
    with pytest.raises(DataError, match="does not exist"):
        pack_info(tmp_path / "missing.h5")
