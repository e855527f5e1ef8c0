"""Prediction layers: tiles of prediction COGs (class colours, a value ramp, transparency),
their style (legend, range), finding a job's files, the disagreement measure, and the
provenance the exports carry. Synthetic COGs on a real window grid, written here."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from labeling.predictions import (
    disagreement,
    job_window_file,
    mosaic_prediction,
    prediction_style,
)
from labeling.tiles import _ramp_lut, render_prediction_tile, tile_for_lonlat

LEGEND = [
    {"value": 0, "label": "land", "color": "#00aa00"},
    {"value": 3, "label": "water", "color": "#0000ff"},
]


def write_prediction(
    path: Path, window, values: np.ndarray, *, nodata, classes=None, task="segmentation"
) -> Path:
    """A GeoTIFF on ``window``'s grid as inference writes it (``CLASSES``/``TASK`` tags)."""
    import rasterio

    grid = window.to_window()
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=grid.width,
        height=grid.height,
        count=1,
        dtype=values.dtype,
        crs=grid.crs,
        transform=grid.transform,
        nodata=nodata,
    ) as dst:
        dst.write(values[None])
        tags = {"TASK": task}
        if classes is not None:
            tags["CLASSES"] = json.dumps(classes)
        dst.update_tags(**tags)
    return path


def _centre(window) -> tuple[float, float]:
    from shapely.geometry import shape

    c = shape(window.geometry).centroid
    return c.x, c.y


def _rgba(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def _direct(path: Path, z: int, x: int, y: int):
    from rio_tiler.io import Reader

    with Reader(str(path)) as src:
        img = src.tile(x, y, z, tilesize=256, indexes=[1])
    return np.asarray(img.array[0].filled(0), dtype=np.float64), img.mask > 0


@pytest.fixture
def class_map(windows, tmp_path):
    """A window's class map: land left, water right, a nodata block, an unknown class 7."""
    w = windows[0]
    v = np.zeros((64, 64), dtype=np.uint8)
    v[:, 32:] = 3
    v[:16, :16] = 255  # nodata
    v[48:, :8] = 7  # not in the legend
    return w, write_prediction(tmp_path / "p.tif", w, v, nodata=255, classes=LEGEND)


def test_class_tiles_take_the_legend_colours_and_leave_the_rest_transparent(class_map):
    w, cog = class_map
    z, x, y = tile_for_lonlat(*_centre(w), 15)
    img = _rgba(render_prediction_tile(cog, z=z, x=x, y=y, kind="classes", legend=LEGEND))
    assert img.shape == (256, 256, 4)
    codes, inside = _direct(cog, z, x, y)
    colours = {0: (0, 170, 0), 3: (0, 0, 255)}
    expected_alpha = inside & np.isin(codes, list(colours))
    assert ((img[..., 3] == 255) == expected_alpha).all()
    assert expected_alpha.any() and (~inside).any()  # the window, and the tile around it
    for value, rgb in colours.items():
        hit = expected_alpha & (codes == value)
        assert hit.any() and (img[hit][:, :3] == rgb).all()
    assert (img[inside & (codes == 7)][..., 3] == 0).all()  # unknown class: transparent
    # far away: fully transparent
    empty = _rgba(render_prediction_tile(cog, z=15, x=0, y=0, kind="classes", legend=LEGEND))
    assert (empty[..., 3] == 0).all()


def test_value_tiles_follow_the_ramp_over_the_range(windows, tmp_path):
    w = windows[1]
    v = np.tile(np.linspace(0, 2, 64, dtype=np.float32), (64, 1))  # 0 left .. 2 right
    v[:8] = np.nan
    cog = write_prediction(tmp_path / "v.tif", w, v, nodata=float("nan"), task="pixel_regression")
    z, x, y = tile_for_lonlat(*_centre(w), 15)
    img = _rgba(render_prediction_tile(cog, z=z, x=x, y=y, kind="values", value_range=(0, 1)))
    data, inside = _direct(cog, z, x, y)
    valid = inside & np.isfinite(data)
    assert ((img[..., 3] == 255) == valid).all() and valid.any()
    lut = _ramp_lut("viridis")
    index = np.clip(np.rint(np.where(valid, data, 0) * 255), 0, 255).astype(int)
    assert (img[valid][:, :3] == lut[index[valid]]).all()
    assert (img[valid & (data >= 1)][:, :3] == lut[255]).all()  # clamped above the range
    # the style: values, their range, the ramp
    style = prediction_style(cog, task="pixel_regression", project_classes=[])
    assert style["kind"] == "values" and style["ramp"] == "viridis" and style["legend"] == []
    assert style["range"] == pytest.approx([0.0, 2.0])


def test_the_style_of_a_class_map_is_its_legend_else_the_project_classes(class_map, tmp_path):
    w, cog = class_map
    style = prediction_style(cog, task="segmentation", project_classes=[])
    assert style == {"kind": "classes", "legend": LEGEND, "range": None, "ramp": None}
    bare = write_prediction(tmp_path / "bare.tif", w, np.zeros((64, 64), np.uint8), nodata=255)
    project = [{"value": 0, "label": "land"}, {"value": 3, "label": "water", "color": "#123456"}]
    style = prediction_style(bare, task="segmentation", project_classes=project)
    assert [c["color"] for c in style["legend"]] == ["#1f77b4", "#123456"]


def test_a_jobs_window_file_is_found_only_inside_the_data_dir(tmp_path):
    data = tmp_path / "data"
    cog = data / "jobs" / "5" / "windows" / "w1" / "prediction.tif"
    cog.parent.mkdir(parents=True)
    cog.write_bytes(b"x")
    mosaic = data / "jobs" / "5" / "mosaic.tif"
    mosaic.write_bytes(b"x")
    outside = tmp_path / "elsewhere" / "w2" / "prediction.tif"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(b"x")
    job = SimpleNamespace(
        payload={"dataset": "d"},
        result={
            "windows": ["w1", "w2", "mosaic"],
            "artifacts": {
                "w1.tif": str(cog),
                "w2.tif": str(outside),
                "mosaic.tif": str(mosaic),
            },
        },
    )
    assert job_window_file(job, window="w1", dataset="d", data_dir=data) == cog.resolve()
    assert job_window_file(job, window="w1", dataset="other", data_dir=data) is None
    assert job_window_file(job, window="w2", dataset="d", data_dir=data) is None  # outside
    assert job_window_file(job, window="mosaic", dataset="d", data_dir=data) is None
    assert job_window_file(job, window="w3", dataset="d", data_dir=data) is None
    assert mosaic_prediction(job, data_dir=data) == mosaic.resolve()


def test_disagreement_counts_labelled_pixels_the_model_predicted():
    labels = np.array([[0, 0, 1, -1], [1, 1, 1, -1]])
    predicted = np.array([[0, 1, 1, 1], [0, np.nan, 1, 0]])
    share, n = disagreement(labels, predicted)
    assert n == 5 and share == pytest.approx(2 / 5)
    assert disagreement(np.full((2, 2), -1), np.zeros((2, 2))) == (0.0, 0)


def test_exports_carry_each_annotations_provenance(windows, tmp_path):
    from earthplat.data.dataset import Dataset
    from labeling.export import annotation_feature, export_dataset, export_geojson

    w = windows[0]
    rows = [
        SimpleNamespace(
            id=i + 1,
            geometry=w.geometry,
            class_value=value,
            value=None,
            properties={},
            author_id=1,
            version=1,
            window_id=w.id,
            origin=origin,
            model_id=model,
            edited=edited,
        )
        for i, (value, origin, model, edited) in enumerate(
            [(0, "human", None, False), (3, "model", 7, False), (0, "model", 7, True)]
        )
    ]
    feats = [annotation_feature(r, window=w.name) for r in rows]
    classes = [{"value": 0, "label": "land"}, {"value": 3, "label": "water"}]
    fc = export_geojson(feats, classes)
    got = [(f["properties"]["origin"], f["properties"]["model_id"], f["properties"]["edited"])
           for f in fc["features"]]  # fmt: skip
    assert got == [("human", None, False), ("model", 7, False), ("model", 7, True)]
    root = export_dataset([w.to_window()], feats, classes, tmp_path / "ds", task="segmentation")
    ds = Dataset(root)
    info = ds.read_json(ds.url("export.json"))
    assert info["origins"] == {"human": 1, "model": 2, "model_edited": 1}
    saved = ds.read_json(ds.url("annotations.geojson"))
    assert [f["properties"]["origin"] for f in saved["features"]] == ["human", "model", "model"]
    assert [f["properties"]["edited"] for f in saved["features"]] == [False, False, True]
