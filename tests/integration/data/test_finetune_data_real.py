"""Labelled real datasets (recipes) -> fine-tuning batches, checked against the sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from earthplat.data import finetune as ft
from earthplat.data.finetune import FinetuneDataConfig
from earthplat.data.layer import read_layer_arrays
from earthplat.eval import recipes

pytestmark = pytest.mark.slow
SPLIT = {"cell_size_m": 320, "fractions": {"train": 0.6, "val": 0.2, "test": 0.2}}


@pytest.fixture(scope="module")
def real(shared_data):
    return shared_data / "real"


@pytest.fixture(scope="module")
def eurosat(real, tmp_path_factory):
    root = tmp_path_factory.mktemp("eurosat")
    return recipes.eurosat_classification(real / "eurosat_ms_subset", root, limit_per_class=2)


@pytest.fixture(scope="module")
def slovenia(real, tmp_path_factory):
    """All Slovenia label recipes on one dataset (each keeps the labels of the others)."""
    root = tmp_path_factory.mktemp("slovenia")
    d = real / "s2_slovenia_eolearn"
    elevation = recipes.slovenia_mean_elevation(d, root)
    det = recipes.slovenia_parcels_detection(d, root)
    multi = recipes.slovenia_multilabel(d, root)
    return {"elevation": elevation, "detection": det, "multilabel": multi}


def _dm(ds, **kw):
    return ft.FinetuneDataModule(FinetuneDataConfig(path=ds.root, **kw))


def test_eurosat_classification_batches(eurosat):
    ds, windows, classes = eurosat
    assert len(windows) == 20 and [c["label"] for c in classes][:2] == ["AnnualCrop", "Forest"]
    dm = _dm(
        ds,
        task="classification",
        label={"kind": "property", "name": "class_id"},
        classes=classes,
        split={"cell_size_m": 10_000, "seed": 1},
        chip_size=32,
        batch_size=4,
    )
    dm.setup()
    zones = {w.crs for ws in dm.splits.values() for w in ws}
    assert len(zones) > 3 and all(dm.splits.values())  # cross-zone windows, every split used
    by_name = {w.name: w for w in windows}
    for batch in dm.train_dataloader():
        s2 = batch.modalities["sentinel2_l1c"]
        assert s2.data.shape == (4, 1, 13, 32, 32) and s2.valid.all()
        for name, target in zip(batch.window, batch.target.tolist()):
            assert classes[target]["label"] == by_name[name].properties["class_name"]
    val = list(dm.val_dataloader())
    assert sum(len(b.window) for b in val) == len(dm.splits["val"])  # one chip per window


def test_slovenia_segmentation_matches_source_labels(slovenia):
    ds, _, classes = slovenia["multilabel"]
    dm = _dm(
        ds,
        task="segmentation",
        label={"kind": "layer", "name": "label"},
        classes=classes,
        split=SPLIT,
        chip_size=16,
        num_periods=5,
        batch_size=4,
    )
    dm.setup()
    codes = np.array([c["value"] for c in classes])
    for split in ("val", "test"):
        for batch in dm.val_dataloader() if split == "val" else dm.test_dataloader():
            assert batch.modalities["sentinel2_l1c"].data.shape[1:3] == (5, 13)
            for name, chip, target in zip(batch.window, batch.chip, batch.target):
                r0, c0, r1, c1 = chip.tolist()
                lulc = read_layer_arrays(ds, name, "lulc")  # ingested straight from lulc.tif
                src = np.full((r1 - r0, c1 - c0), -1)
                block = lulc.data[0, 0, r0:r1, c0:c1]
                src[: block.shape[0], : block.shape[1]] = np.where(
                    lulc.valid[0, r0:r1, c0:c1], block, -1
                )
                t = target.numpy()
                scored = t >= 0
                np.testing.assert_array_equal(codes[t[scored]], src[scored])


def test_slovenia_multilabel_and_detection(slovenia):
    det_ds, det_windows, classes = slovenia["detection"]
    ds = slovenia["multilabel"][0]
    assert len(det_windows) >= 4
    dm = _dm(
        ds,
        task="multilabel",
        label={"kind": "property", "name": "lulc_present"},
        classes=classes,
        split=SPLIT,
        chip_size=32,
        batch_size=2,
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch.target.shape == (2, 5) and (batch.target.sum(1) >= 1).all()
    for name, hot in zip(batch.window, batch.target):
        present = ds.window(name).properties["lulc_present"]
        assert [c["value"] for c, h in zip(classes, hot.tolist()) if h] == present
    dm = _dm(
        det_ds,
        task="detection",
        label={"kind": "geojson", "name": "parcels"},
        classes=classes,
        split=SPLIT,
        chip_size=32,
        batch_size=2,
    )
    n = 0
    for batch in dm.train_dataloader():
        for boxes, labels in zip(batch.boxes, batch.box_labels):
            assert ((boxes >= 0) & (boxes <= 32)).all()
            assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
            assert ((labels >= 0) & (labels < 5)).all()
            n += len(boxes)
    assert n > 0


def test_slovenia_elevation_regressions(slovenia):
    ds, windows, info = slovenia["elevation"]
    assert 664 <= info["mean"] <= 801
    # later recipes on the same dataset kept this recipe's window labels
    assert all("mean_elevation" in ds.window(w.name).properties for w in windows)
    for task, label in (
        ("pixel_regression", {"kind": "layer", "name": "elevation"}),
        ("regression", {"kind": "property", "name": "mean_elevation"}),
    ):
        dm = _dm(ds, task=task, label=label, split=SPLIT, chip_size=16, batch_size=4)
        batch = next(iter(dm.train_dataloader()))
        t, v = batch.target, batch.target_valid
        assert t.dtype == torch.float32 and v.dtype == torch.bool and v.any()
        assert ((t[v] >= 664) & (t[v] <= 801)).all()  # the DEM's real range, metres
        assert t.shape == ((4, 16, 16) if task == "pixel_regression" else (4,))


def test_sen1floods11_water_aligned_with_optical_and_radar(real, tmp_path_factory):
    """Water is dark in NIR and in VV backscatter: true only if labels stay aligned with the
    inputs through crops, flips and rot90."""
    ds, windows, info = recipes.sen1floods11_water_fraction(
        real / "sen1floods11_spain", tmp_path_factory.mktemp("floods")
    )
    classes = info["classes"]
    assert [c["label"] for c in classes] == ["not water", "water"] and len(windows) > 20
    fractions = np.array([w.properties["water_fraction"] for w in windows])
    assert ((fractions >= 0) & (fractions <= 1)).all() and 0 < fractions.mean() < 1
    dm = _dm(
        ds,
        task="segmentation",
        inputs={"s2": "sentinel2_l1c", "s1": "sentinel1"},
        label={"kind": "layer", "name": "label"},
        classes=classes,
        split={"cell_size_m": 1280},
        chip_size=32,
        batch_size=8,
        train_chips_per_window=2,
    )
    nir = {0: [], 1: []}
    vv = {0: [], 1: []}
    for batch in dm.train_dataloader():
        s2, s1 = batch.modalities["sentinel2_l1c"], batch.modalities["sentinel1"]
        b08 = s2.data[:, 0, s2.bands.index("B08")]
        v = s1.data[:, 0, s1.bands.index("VV")]
        ok = s2.valid[:, 0] & s1.valid[:, 0]
        for k in (0, 1):
            sel = (batch.target == k) & ok
            nir[k].append(b08[sel])
            vv[k].append(v[sel])
    water, land = torch.cat(nir[1]), torch.cat(nir[0])
    assert len(water) > 100 and len(land) > 100
    assert water.mean() < land.mean() - 0.1
    assert torch.cat(vv[1]).mean() < torch.cat(vv[0]).mean() - 0.1
    dm = _dm(
        ds,
        task="regression",
        inputs={"s1": "sentinel1"},
        label={"kind": "property", "name": "water_fraction"},
        split={"cell_size_m": 1280},
        chip_size=64,
        batch_size=4,
    )
    for batch in dm.val_dataloader():
        for name, t in zip(batch.window, batch.target.tolist()):
            assert t == pytest.approx(ds.window(name).properties["water_fraction"])


def test_lightning_fit_resumes_the_data_order(eurosat, tmp_path):
    """Through Lightning and the training core: a run stopped after 2 steps and resumed sees
    the same batches as an uninterrupted run."""
    import lightning as L

    from earthplat.traincore.checkpoint import CheckpointConfig
    from earthplat.traincore.trainer import TrainerConfig, fit

    ds, _, classes = eurosat

    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen = []

        def training_step(self, batch, i):
            self.seen.append(batch.window)
            return (self.w * batch.modalities["sentinel2_l1c"].data.mean()).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def run(run_dir, steps):
        module = Recorder()
        cfg = TrainerConfig(
            run_dir=str(run_dir),
            accelerator="cpu",
            devices=1,
            max_steps=steps,
            enable_progress_bar=False,
            checkpoint=CheckpointConfig(every_n_steps=1),
        )
        data = FinetuneDataConfig(
            path=ds.root,
            task="classification",
            label={"kind": "property", "name": "class_id"},
            classes=classes,
            split={"cell_size_m": 10_000, "seed": 1},
            chip_size=16,
            batch_size=2,
        )
        fit(cfg, module, ft.FinetuneDataModule(data), limit_val_batches=0)
        return module.seen

    straight = run(tmp_path / "a", 5)
    first = run(tmp_path / "b", 2)
    rest = run(tmp_path / "b", 5)
    assert first + rest == straight
