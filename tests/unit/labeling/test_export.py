"""Exports of annotations drawn from the real Sen1Floods11 hand labels (water / not water)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rasterio.features import shapes
from rasterio.warp import transform_geom
from shapely.geometry import shape

from earthplat.data.layer import read_layer_arrays
from earthplat.errors import DataError
from earthplat.tasks import TASKS
from labeling.export import export_dataset, export_geojson, export_geoparquet

CLASSES = [
    {"value": 0, "label": "dry", "color": "#c2a878"},
    {"value": 1, "label": "water", "color": "#1f5fd6"},
]


@pytest.fixture(scope="module")
def floods(shared_data, tmp_path_factory):
    """The Sen1Floods11 chip materialised, and its three windows with the most labelled pixels
    with their hand labels as WGS84 polygons (one feature per connected region)."""
    from earthplat.eval.recipes import ingest_sen1floods11

    root = shared_data / "real" / "sen1floods11_spain"
    if not root.is_dir():
        pytest.skip(f"missing component: {root}")
    ds, windows = ingest_sen1floods11(
        root, tmp_path_factory.getbasetemp() / "sen1floods11_ds"
    )  # shared, resumable

    def labelled(w):
        return float(read_layer_arrays(ds, w, "label").valid.mean())

    chosen = sorted(windows, key=labelled, reverse=True)[:3]
    features = []
    for w in chosen:
        lab = read_layer_arrays(ds, w, "label")
        codes = lab.data[0, 0].astype(np.int16)
        for k, (geom, value) in enumerate(
            shapes(codes, mask=lab.valid[0], transform=w.transform, connectivity=4)
        ):
            features.append(
                {
                    "type": "Feature",
                    "id": f"{w.name}-{k}",
                    "geometry": transform_geom(w.crs, "EPSG:4326", geom),
                    "properties": {
                        "class": int(value),
                        "author": "hand",
                        "version": 1,
                        "window": w.name,
                    },
                }
            )
    return ds, chosen, features


def _ring_area(ring):
    xs, ys = np.asarray(ring).T
    return 0.5 * float(np.sum(xs[:-1] * ys[1:] - xs[1:] * ys[:-1]))


def test_geojson_is_rfc7946(floods):
    _, _, features = floods
    fc = export_geojson(features, CLASSES)
    assert fc["type"] == "FeatureCollection" and "crs" not in fc
    assert len(fc["features"]) == len(features) > 3
    labels = {f["properties"]["label"] for f in fc["features"]}
    assert labels == {"dry", "water"}
    for f in fc["features"]:
        geom = shape(f["geometry"])
        assert geom.is_valid and not geom.is_empty
        lon0, lat0, lon1, lat1 = geom.bounds
        assert -180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90
        assert -2 < lon0 < 0 and 37 < lat0 < 39  # the Segura valley, Spain
        rings = f["geometry"]["coordinates"]
        assert _ring_area(rings[0]) > 0  # exterior counter-clockwise
        assert all(_ring_area(r) < 0 for r in rings[1:])  # holes clockwise
        assert f["properties"]["author"] == "hand" and f["properties"]["version"] == 1
    b = fc["bbox"]
    assert b[0] <= min(shape(f["geometry"]).bounds[0] for f in fc["features"])
    json.dumps(fc)  # plain JSON


def test_geojson_rejects_unknown_class_and_projected_coordinates(floods):
    _, _, features = floods
    bad = dict(features[0], properties={**features[0]["properties"], "class": 7})
    with pytest.raises(DataError, match="class value 7"):
        export_geojson([bad], CLASSES)
    utm = {
        "type": "Polygon",
        "coordinates": [
            [[694400, 4222720], [694500, 4222720], [694500, 4222600], [694400, 4222720]]
        ],
    }
    with pytest.raises(DataError, match="longitude/latitude"):
        export_geojson([{"type": "Feature", "geometry": utm, "properties": {"class": 1}}], CLASSES)


def test_geojson_repairs_bowtie_polygon():
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    fc = export_geojson(
        [{"type": "Feature", "geometry": bowtie, "properties": {"class": 1}}], CLASSES
    )
    geom = shape(fc["features"][0]["geometry"])
    assert geom.is_valid and geom.geom_type == "MultiPolygon" and geom.area == pytest.approx(0.5)


def test_geoparquet_round_trips(floods, tmp_path):
    import geopandas as gpd

    _, _, features = floods
    path = export_geoparquet(features, CLASSES, tmp_path / "ann.parquet")
    frame = gpd.read_parquet(path)
    assert frame.crs.to_epsg() == 4326
    assert len(frame) == len(features)
    assert set(frame["label"]) == {"dry", "water"}
    assert list(frame["class"]) == [f["properties"]["class"] for f in features]
    for geom, feat in zip(frame.geometry, features):
        assert geom.symmetric_difference(shape(feat["geometry"])).area < 1e-14


def test_exported_segmentation_dataset_matches_the_labels(floods, tmp_path):
    ds, windows, features = floods
    root = export_dataset(
        windows, features, CLASSES, tmp_path / "export", task="segmentation", source=ds
    )
    from earthplat.data.dataset import Dataset

    out = Dataset(root)
    assert sorted(w.name for w in out.windows()) == sorted(w.name for w in windows)
    info = json.loads((tmp_path / "export" / "export.json").read_text())
    assert info["label"] == {"kind": "layer", "name": "label"}
    assert info["inputs"] == {"s1": "sentinel1", "s2": "sentinel2_l1c"}
    for w in windows:
        assert set(out.layers(w)) == {"s1", "s2", "label"}
        ref = read_layer_arrays(ds, w, "label")
        got = read_layer_arrays(out, w, "label")
        same = (got.valid[0] == ref.valid[0]) & (~ref.valid[0] | (got.data[0, 0] == ref.data[0, 0]))
        assert same.mean() > 0.995  # polygons -> WGS84 -> window grid: pixel-exact but edges
        s2 = read_layer_arrays(out, w, "s2").data
        assert np.array_equal(s2, read_layer_arrays(ds, w, "s2").data)


def test_exported_dataset_loads_in_the_finetune_data_module(floods, tmp_path):
    pytest.importorskip("torch")
    from earthplat.batch import collate
    from earthplat.data.finetune import FinetuneDataConfig, FinetuneDataset

    ds, windows, features = floods
    root = export_dataset(
        windows, features, CLASSES, tmp_path / "export", task="segmentation", source=ds
    )
    info = json.loads((tmp_path / "export" / "export.json").read_text())
    cfg = FinetuneDataConfig(
        path=root,
        task="segmentation",
        inputs=info["inputs"],
        label=info["label"],
        classes=info["classes"],
        chip_size=32,
    )
    from earthplat.data.dataset import Dataset

    data = FinetuneDataset(Dataset(root), windows, cfg, "eval")
    batch = collate([data[i] for i in range(4)])
    target = batch.target
    assert tuple(target.shape) == (4, 32, 32)
    assert set(target.unique().tolist()) <= {-1, 0, 1} and (target == 1).any()
    assert tuple(batch.modalities["sentinel2_l1c"].data.shape[-3:]) == (13, 32, 32)


def test_window_level_classification_export(floods, tmp_path):
    ds, windows, _ = floods
    # one window-level annotation per window: its majority class
    per_window = {}
    for w in windows:
        lab = read_layer_arrays(ds, w, "label")
        major = int(np.bincount(lab.data[0, 0][lab.valid[0]].astype(int)).argmax())
        per_window[w.name] = [
            {
                "type": "Feature",
                "geometry": w.geometry_wgs84().__geo_interface__,
                "properties": {"class": major},
            }
        ]
    root = export_dataset(windows, per_window, CLASSES, tmp_path / "cls", task="classification")
    from earthplat.data.dataset import Dataset

    got = {w.name: w.properties["class_id"] for w in Dataset(root).windows()}
    assert got == {k: v[0]["properties"]["class"] for k, v in per_window.items()}
    with pytest.raises(DataError, match="not among the exported windows"):
        export_dataset(windows[:1], per_window, CLASSES, tmp_path / "x", task="classification")


@pytest.mark.parametrize("task", sorted(t for t, k in TASKS.items() if k.label_sources))
def test_every_labelled_task_exports_a_dataset_the_data_module_trains_on(floods, tmp_path, task):
    """For each task of the registry: the export holds the label the task reads, and the
    fine-tuning dataset built from ``export.json`` yields a valid target from it."""
    pytest.importorskip("torch")
    from earthplat.batch import collate
    from earthplat.data.dataset import Dataset
    from earthplat.data.finetune import FinetuneDataConfig, FinetuneDataset

    ds, windows, features = floods
    kind = TASKS[task]
    feats = [  # the hand-label polygons, each with a class and a value
        {**f, "properties": {**f["properties"], "value": 2.5 * f["properties"]["class"] + 1}}
        for f in features
    ]
    classes = CLASSES if kind.class_task else None
    root = export_dataset(windows, feats, classes, tmp_path / task, task=task, source=ds)
    info = json.loads((tmp_path / task / "export.json").read_text())
    assert info["task"] == task
    assert info["label"] == {"kind": kind.label_sources[0], "name": kind.default_label}
    cfg = FinetuneDataConfig(
        path=root,
        task=task,
        inputs=info["inputs"],
        label=info["label"],
        classes=info["classes"],
        chip_size=32,
    )
    out = Dataset(root)
    exported = out.windows()  # with the labels export wrote into their properties
    data = FinetuneDataset(out, exported, cfg, "eval")
    batch = collate([data[i] for i in range(len(exported))])
    if kind.target == "boxes":
        assert sum(len(b) for b in batch.boxes) > 0
    else:
        assert batch.target_valid.any()
        valid = batch.target[batch.target_valid]
        if kind.class_task:  # class indices of the schema
            assert set(valid.unique().tolist()) <= {0, 1}
        else:  # the values given: 1.0 (dry) and 3.5 (water), blended by nothing
            assert set(valid.unique().tolist()) <= {1.0, 3.5}
