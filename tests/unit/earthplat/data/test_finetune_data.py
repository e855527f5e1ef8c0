"""Fine-tuning batches (Contract A): every task's shapes, aligned crops and augmentation,
exact val/test coverage, exact resume, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from earthplat.batch import collate, to_model_inputs
from earthplat.data import finetune as ft
from earthplat.data.finetune import FinetuneDataConfig, FinetuneDataset, tile_starts
from earthplat.data.finetune.augment import augment_array, augment_boxes
from earthplat.data.labels import set_window_labels, write_label_layer
from earthplat.data.layer import read_layer_arrays
from earthplat.errors import DataError
from earthplat.sensors import normalize
from earthplat.tasks import TASKS
from tests.unit.earthplat.data.data import build_dataset

CLASSES = [{"value": 0, "label": "dark"}, {"value": 5, "label": "bright"}]
THRESHOLD = 1400
BANDS = ("B02", "B03", "B04", "B08")
B04 = 2  # channel of B04 in the fixture's s2 layer (B02, B03, B04, B08)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """The 3 x 3 window fixture with labels derived from its own first S2 period."""
    ds = build_dataset(tmp_path_factory.mktemp("finetune"))
    props, multi, reg = {}, {}, {}
    for i, w in enumerate(ds.windows()):
        ld = read_layer_arrays(ds, w, "s2")
        b04, valid = ld.data[0, B04].astype(np.float64), ld.valid[0]  # [H, W]
        seg = np.where(b04 > THRESHOLD, 5, 0)
        write_label_layer(ds, w, raster=np.where(valid, seg, -1), classes=CLASSES, layer="seg")
        write_label_layer(ds, w, raster=np.where(valid, b04, np.nan), layer="b04")
        # two point objects per window with known pixel positions
        from rasterio.warp import transform

        feats = []
        for k, (col, row) in enumerate(((3.5, 4.5), (20.25, 15.75))):
            x, y = w.transform @ (col, row)
            lon, lat = transform(w.crs, "EPSG:4326", [x], [y])
            geom = {"type": "Point", "coordinates": [lon[0], lat[0]]}
            feats.append({"geometry": geom, "properties": {"class": 5 * (k % 2)}})
        write_label_layer(ds, w, feats, classes=CLASSES, layer="objects")
        props[w.name] = 5 * (i % 2)
        multi[w.name] = [0, 5] if i % 3 else [5]
        reg[w.name] = float(i) / 2
    set_window_labels(ds, props, property="class_id", classes=CLASSES)
    set_window_labels(ds, multi, property="present", classes=CLASSES)
    set_window_labels(ds, reg, property="score")
    return ds


LABELS = {
    "classification": {"kind": "property", "name": "class_id"},
    "multilabel": {"kind": "property", "name": "present"},
    "segmentation": {"kind": "layer", "name": "seg"},
    "pixel_regression": {"kind": "layer", "name": "b04"},
    "regression": {"kind": "property", "name": "score"},
    "detection": {"kind": "geojson", "name": "objects"},
    "embedding": None,
}


def _config(ds, task: str, **kw) -> FinetuneDataConfig:
    base = dict(
        path=ds.root,
        task=task,
        inputs={"s2": "sentinel2_l2a", "s1": "sentinel1"},
        label=LABELS[task],
        classes=CLASSES
        if task in ("classification", "multilabel", "segmentation", "detection")
        else [],
        split={"cell_size_m": 320, "fractions": {"train": 0.6, "val": 0.2, "test": 0.2}},
        chip_size=16,
        num_periods=4,
        batch_size=3,
    )
    base.update(kw)
    return FinetuneDataConfig(**base)


@pytest.mark.parametrize("task", TASKS)
def test_batch_matches_contract(labelled, task):
    dm = ft.FinetuneDataModule(_config(labelled, task))
    batch = next(iter(dm.train_dataloader()))
    b = 3
    assert len(batch.window) == b and batch.chip.shape == (b, 4)
    s2 = batch.modalities["sentinel2_l2a"]
    assert s2.data.shape == (b, 4, 4, 16, 16) and s2.data.dtype == torch.float32
    assert s2.valid.shape == (b, 4, 16, 16) and s2.valid.dtype == torch.bool
    assert s2.timestamps.shape == (b, 4, 3) and s2.timestamps.dtype == torch.long
    assert not s2.valid[:, 3].any()  # the fixture has 3 periods: the 4th is padding
    assert s2.bands == ("B02", "B03", "B04", "B08")
    assert batch.modalities["sentinel1"].data.shape == (b, 4, 2, 16, 16)
    inputs = to_model_inputs(batch)
    assert inputs["sentinel2_l2a"].bands == ("B02", "B03", "B04", "B08")
    target, valid = batch.target, batch.target_valid
    if task == "classification":
        assert target.shape == (b,) and target.dtype == torch.long and valid.dtype == torch.bool
        assert set(target.tolist()) <= {0, 1}
    elif task == "multilabel":
        assert target.shape == (b, 2) and target.dtype == torch.float32 and valid.all()
        assert set(target.flatten().tolist()) <= {0.0, 1.0} and (target.sum(1) >= 1).all()
    elif task == "segmentation":
        assert target.shape == (b, 16, 16) and target.dtype == torch.long
        assert torch.equal(valid, target >= 0) and set(target.unique().tolist()) <= {-1, 0, 1}
    elif task == "pixel_regression":
        assert target.shape == (b, 16, 16) and target.dtype == torch.float32
        assert valid.shape == (b, 16, 16) and valid.dtype == torch.bool
    elif task == "regression":
        assert target.shape == (b,) and target.dtype == torch.float32 and valid.all()
    elif task == "detection":
        assert batch.target is None and len(batch.boxes) == b
        for boxes, labels in zip(batch.boxes, batch.box_labels):
            assert boxes.ndim == 2 and boxes.shape[1] == 4 and boxes.dtype == torch.float32
            assert labels.dtype == torch.long and labels.shape == (boxes.shape[0],)
            assert ((boxes >= 0) & (boxes <= 16)).all()
            assert torch.equal(boxes[:, :2], boxes[:, 2:])  # points are zero-size boxes
    else:
        assert batch.target is None and batch.boxes is None


def test_augmented_targets_stay_aligned_with_inputs(labelled):
    """Targets derived from input band B04 still match it after random crops, flips, rot90."""
    for task in ("segmentation", "pixel_regression"):
        cfg = _config(labelled, task, inputs={"s2": "sentinel2_l2a"}, train_chips_per_window=4)
        dm = ft.FinetuneDataModule(cfg)
        loader = dm.train_dataloader()
        for epoch in range(2):
            loader.sampler.set_epoch(epoch)
            for batch in loader:
                s2 = batch.modalities["sentinel2_l2a"]
                b04, ok = s2.data[:, 0, B04], s2.valid[:, 0]  # [B, h, w]
                if task == "segmentation":
                    thr = normalize(
                        np.full((1, 4, 1, 1), THRESHOLD, np.float32), "sentinel2_l2a", BANDS
                    )
                    bright = b04 > float(thr[0, B04, 0, 0])
                    assert torch.equal(batch.target >= 0, ok)
                    assert torch.equal((batch.target == 1)[ok], bright[ok])
                else:
                    raw = np.asarray(batch.target)[:, None, None]  # [B, 1, 1, h, w]
                    raw = np.repeat(raw, 4, axis=2)
                    expect = torch.from_numpy(
                        normalize(raw.astype(np.float32), "sentinel2_l2a", BANDS)
                    )[:, 0, B04]
                    assert torch.equal(batch.target_valid, ok)
                    torch.testing.assert_close(expect[ok], b04[ok])


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_boxes_follow_the_pixels(flip, k):
    img = np.zeros((12, 12), np.uint8)
    img[2:5, 7:11] = 1  # rows 2-4, cols 7-10 -> box (7, 2, 11, 5)
    out = augment_array(img, flip, k)
    rows, cols = np.nonzero(out)
    box = augment_boxes(np.array([[7, 2, 11, 5]], np.float32), 12, flip, k)[0]
    np.testing.assert_array_equal(box, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])


def test_detection_drops_boxes_whose_centre_leaves_the_chip(labelled):
    windows = labelled.windows()
    cfg = _config(labelled, "detection", inputs={"s2": "sentinel2_l2a"})
    ds = FinetuneDataset(labelled, windows, cfg, "eval")
    found = {w.name: [] for w in windows}
    for i in range(len(ds)):
        item = ds[i]
        r0, c0 = item.chip[:2].tolist()
        for box in item.boxes.tolist():
            assert 0 <= box[0] < 16 and 0 <= box[1] < 16
            found[item.window].append((box[0] + c0, box[1] + r0))
    for w in windows:  # each point exactly once over the window's tiles, at its position
        assert len(found[w.name]) == 2
        np.testing.assert_allclose(sorted(found[w.name]), [(3.5, 4.5), (20.25, 15.75)], atol=1e-3)


def test_eval_chips_cover_each_window_exactly_once(labelled):
    cfg = _config(
        labelled,
        "segmentation",
        chip_size=12,
        inputs={"s2": "sentinel2_l2a"},
        split={"kind": "spatial", "cell_size_m": 320},
    )
    windows = labelled.windows()
    ds = FinetuneDataset(labelled, windows, cfg, "eval")
    assert tile_starts(32, 12) == [0, 12, 20] and tile_starts(24, 12) == [0, 12]
    batches = list(torch.utils.data.DataLoader(ds, batch_size=5, collate_fn=collate))
    scored = {w.name: np.zeros((w.height, w.width), int) for w in windows}
    covered = {w.name: np.zeros((w.height, w.width), bool) for w in windows}
    for batch in batches:
        for name, chip, valid in zip(batch.window, batch.chip, batch.target_valid):
            r0, c0, r1, c1 = chip.tolist()
            assert r1 - r0 == 12 and c1 - c0 == 12
            scored[name][r0:r1, c0:c1] += valid.numpy()
            covered[name][r0:r1, c0:c1] = True
    for w in windows:
        labelled_px = read_layer_arrays(labelled, w, "seg").valid[0]
        np.testing.assert_array_equal(scored[w.name], labelled_px.astype(int))
        assert covered[w.name].all()


def test_train_loader_resumes_exactly(labelled):
    cfg = _config(labelled, "segmentation", train_chips_per_window=3, batch_size=2)
    loader = ft.FinetuneDataModule(cfg).train_dataloader()
    loader.sampler.set_epoch(1)
    full = list(loader)
    assert len(full) >= 4
    resumed = ft.FinetuneDataModule(cfg).train_dataloader()
    resumed.load_state_dict({"epoch": 1, "consumed_batches": 2, "batch_size": 2, "seed": 0})
    rest = list(resumed)
    assert len(rest) == len(full) - 2
    for a, b in zip(full[2:], rest):
        assert a.window == b.window and torch.equal(a.chip, b.chip)
        assert torch.equal(a.target, b.target)
        assert torch.equal(a.modalities["sentinel2_l2a"].data, b.modalities["sentinel2_l2a"].data)
    loader.sampler.set_epoch(2)
    assert [x.chip.tolist() for x in loader] != [x.chip.tolist() for x in full]


def test_unknown_class_in_layer_is_a_clear_error(labelled):
    cfg = _config(labelled, "segmentation", classes=[{"value": 0, "label": "dark"}])
    batch_iter = iter(ft.FinetuneDataModule(cfg).val_dataloader())
    with pytest.raises(DataError, match=r"class value\(s\) \[5\] are not in the class schema"):
        next(batch_iter)


def test_empty_split_is_a_clear_error(labelled):
    cfg = _config(labelled, "classification", split={"cell_size_m": 100_000})
    dm = ft.FinetuneDataModule(cfg)
    with pytest.raises(DataError, match=r"split .* has no windows.*cell_size_m"):
        dm.val_dataloader()


def test_config_validation_and_yaml(labelled):
    with pytest.raises(DataError, match="unknown"):
        FinetuneDataConfig(path=labelled.root, task="counting")
    with pytest.raises(DataError, match="takes its label from layer"):
        _config(labelled, "segmentation", label={"kind": "property", "name": "class_id"})
    with pytest.raises(DataError, match="class schema"):
        _config(labelled, "segmentation", classes=[])
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(FinetuneDataConfig, "data")
    yaml = f"""
data:
  path: {labelled.root}
  task: segmentation
  inputs: {{s2: sentinel2_l2a}}
  label: {{kind: layer, name: seg}}
  classes: [{{value: 0, label: dark, color: "#000000"}}, {{value: 5, label: bright}}]
  split: {{cell_size_m: 320, fractions: {{train: 0.5, val: 0.25, test: 0.25}}}}
  chip_size: 16
"""
    cfg = parser.instantiate(parser.parse_string(yaml)).data
    assert isinstance(cfg, FinetuneDataConfig) and cfg.split.fractions["val"] == 0.25
    assert cfg.label.name == "seg" and cfg.num_outputs == 2


def test_import_does_not_pull_lightning():
    code = (
        "import sys, earthplat.data.finetune, earthplat.data.labels, earthplat.data.splits; "
        "assert 'lightning' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[4])


def test_inputs_match_load_sample_and_periods_trim(labelled):
    """Eval chips hold exactly what ``load_sample`` gives for that part of the window, with the
    series trimmed to ``num_periods``."""
    from earthplat.data.sample import load_sample

    cfg = _config(labelled, "segmentation", inputs={"s2": "sentinel2_l2a"}, num_periods=2)
    w = labelled.window("w4")
    ds = FinetuneDataset(labelled, [w], cfg, "eval")
    sample = load_sample(labelled, w, {"s2": "sentinel2_l2a"}).modalities["sentinel2_l2a"]
    assert sample.data.shape[0] == 3  # the fixture's three periods
    for i in range(len(ds)):
        item = ds[i]
        r0, c0, r1, c1 = item.chip.tolist()
        s2 = item.modalities["sentinel2_l2a"]
        np.testing.assert_array_equal(s2.data.numpy(), sample.data[:2, :, r0:r1, c0:c1])
        np.testing.assert_array_equal(s2.valid.numpy(), sample.valid[:2, r0:r1, c0:c1])
        np.testing.assert_array_equal(s2.timestamps.numpy(), sample.timestamps[:2])


def test_band_subset_and_group_filter(labelled):
    cfg = _config(
        labelled, "regression", inputs={"s2": "sentinel2_l2a"}, bands={"s2": ["red", "B08"]}
    )
    dm = ft.FinetuneDataModule(cfg)
    batch = next(iter(dm.train_dataloader()))
    assert batch.modalities["sentinel2_l2a"].bands == ("B04", "B08")
    assert dm.input_bands == {"sentinel2_l2a": ["B04", "B08"]}
    with pytest.raises(DataError, match="group nowhere"):
        ft.FinetuneDataModule(_config(labelled, "regression", group="nowhere")).setup()
