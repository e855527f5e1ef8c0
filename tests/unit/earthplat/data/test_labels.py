"""Label layers (Contract B): rasterisation, CRS handling, class validation, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from earthplat.data.dataset import Dataset
from earthplat.data.labels import (
    rasterize_features,
    read_boxes,
    set_window_labels,
    validate_classes,
    write_label_layer,
)
from earthplat.data.layer import read_layer_arrays
from earthplat.data.window import Window
from earthplat.errors import DataError

CLASSES = [
    {"value": 1, "label": "water", "color": "#0000ff"},
    {"value": 2, "label": "forest", "color": "#00ff00"},
]
CRS = "EPSG:32633"


@pytest.fixture
def ds_window(tmp_path: Path) -> tuple[Dataset, Window]:
    w = Window("w0", CRS, 10.0, (50_000, -520_000, 50_032, -519_976), "2022-01-01", "2022-02-01")
    ds = Dataset(tmp_path / "ds")
    ds.write_windows([w])
    return ds, w


def _pixel_polygon(w: Window, c0: int, r0: int, c1: int, r1: int) -> dict:
    """A WGS84 polygon covering window pixels [r0:r1, c0:c1] (edges on pixel edges)."""
    from rasterio.warp import transform_geom
    from shapely.geometry import box

    t = w.transform
    x0, y0 = t @ (c0, r1)
    x1, y1 = t @ (c1, r0)
    return transform_geom(CRS, "EPSG:4326", box(x0, y0, x1, y1).__geo_interface__)


def _point(w: Window, col: float, row: float) -> dict:
    from rasterio.warp import transform

    x, y = w.transform @ (col, row)
    lon, lat = transform(CRS, "EPSG:4326", [x], [y])
    return {"type": "Point", "coordinates": [lon[0], lat[0]]}


def test_polygon_covers_expected_pixels(ds_window):
    ds, w = ds_window
    feats = [
        {"geometry": _pixel_polygon(w, 2, 3, 6, 8), "properties": {"class": 1}},
        {"geometry": _pixel_polygon(w, 20, 10, 30, 20), "properties": {"class": 2}},
    ]
    meta = write_label_layer(ds, w, feats, classes=CLASSES)
    ld = read_layer_arrays(ds, w, "label")
    lab = ld.data[0, 0]
    expected = np.full((24, 32), -1, np.int16)
    expected[3:8, 2:6] = 1
    expected[10:20, 20:30] = 2
    np.testing.assert_array_equal(lab, expected)
    np.testing.assert_array_equal(ld.valid[0], expected >= 0)
    assert meta["modality"] == "label" and meta["dtype"] == "int16" and meta["nodata"] == -1
    assert meta["source"]["classes"][0]["label"] == "water"
    assert not ds.fs.exists(ds.layer_path(w, "label", ".geojson"))  # polygons: no boxes file


def test_fill_sets_background_class(ds_window):
    ds, w = ds_window
    feats = [{"geometry": _pixel_polygon(w, 0, 0, 4, 4), "properties": {"class": 2}}]
    classes = [{"value": 0, "label": "background"}, *CLASSES]
    write_label_layer(ds, w, feats, classes=classes, fill=0, layer="bg")
    lab = read_layer_arrays(ds, w, "bg").data[0, 0]
    assert (lab[:4, :4] == 2).all() and (lab[4:] == 0).all()


def test_points_become_boxes(ds_window):
    ds, w = ds_window
    feats = [
        {"geometry": _point(w, 10.5, 4.25), "properties": {"class": 1}},
        {"geometry": _pixel_polygon(w, 20, 10, 24, 13), "properties": {"class": 2}},
        {"geometry": _point(w, 100.0, 100.0), "properties": {"class": 1}},  # outside
    ]
    write_label_layer(ds, w, feats, classes=CLASSES, layer="objects")
    boxes = read_boxes(ds, w, "objects")
    assert len(boxes) == 2
    np.testing.assert_allclose(boxes[0]["box"], [10.5, 4.25, 10.5, 4.25], atol=1e-3)
    np.testing.assert_allclose(boxes[1]["box"], [20, 10, 24, 13], atol=1e-3)
    assert [b["class"] for b in boxes] == [1, 2]
    lab = read_layer_arrays(ds, w, "objects").data[0, 0]
    assert lab[4, 10] == 1  # the point's pixel is burnt too
    collection = ds.read_json(ds.layer_path(w, "objects", ".geojson"))
    assert collection["features"][0]["properties"]["label"] == "water"
    assert collection["features"][0]["geometry"]["type"] == "Point"


def test_raster_in_other_crs_is_reprojected(ds_window, tmp_path):
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import calculate_default_transform, reproject

    ds, w = ds_window
    truth = np.ones((w.height, w.width), np.int16)
    truth[:, 16:] = 2
    truth[:6] = 1
    left, bottom, right, top = w.projected_bounds
    dst_t, dw, dh = calculate_default_transform(
        CRS, "EPSG:4326", w.width * 4, w.height * 4, left, bottom, right, top
    )
    dst = np.zeros((dh, dw), np.int16)
    reproject(
        truth,
        dst,
        src_transform=w.transform,
        src_crs=CRS,
        dst_transform=dst_t,
        dst_crs="EPSG:4326",
        resampling=Resampling.nearest,
    )
    path = tmp_path / "labels_4326.tif"
    profile = dict(driver="GTiff", width=dw, height=dh, count=1, dtype="int16", nodata=0)
    with rasterio.open(path, "w", crs="EPSG:4326", transform=dst_t, **profile) as f:
        f.write(dst, 1)
    write_label_layer(ds, w, raster=str(path), classes=CLASSES)
    lab = read_layer_arrays(ds, w, "label").data[0, 0]
    assert (lab == truth).mean() > 0.97  # nearest-neighbour round trip through lon/lat
    assert set(np.unique(lab)) <= {-1, 1, 2}


def test_unknown_class_raises_and_keeps_prior_layer(ds_window):
    ds, w = ds_window
    good = np.ones((w.height, w.width), np.int16)
    write_label_layer(ds, w, raster=good, classes=CLASSES)
    before = {s: Path(ds.layer_path(w, "label", s)).read_bytes() for s in (".tif", ".json")}
    bad = good.copy()
    bad[3, 3] = 7
    with pytest.raises(DataError) as err:
        write_label_layer(ds, w, raster=bad, classes=CLASSES)
    msg = str(err.value)
    assert "[7]" in msg and "w0" in msg and "[1, 2]" in msg and "add them" in msg
    after = {s: Path(ds.layer_path(w, "label", s)).read_bytes() for s in (".tif", ".json")}
    assert after == before and ds.layer_done(w, "label")


def test_invalid_geometry_raises(ds_window):
    ds, w = ds_window
    a = _point(w, 0, 0)["coordinates"]
    b = _point(w, 10, 10)["coordinates"]
    bowtie = {"type": "Polygon", "coordinates": [[a, b, [b[0], a[1]], [a[0], b[1]], a]]}
    with pytest.raises(DataError, match="invalid geometry"):
        write_label_layer(
            ds, w, [{"geometry": bowtie, "properties": {"class": 1}}], classes=CLASSES
        )
    with pytest.raises(DataError, match="no property 'class'"):
        rasterize_features(w, [{"geometry": _point(w, 1, 1), "properties": {}}])
    assert not ds.layer_done(w, "label")


def test_float_layer_has_nan_nodata(ds_window):
    ds, w = ds_window
    values = np.arange(w.height * w.width, dtype=np.float32).reshape(w.height, w.width) / 7
    values[0, :5] = np.nan
    meta = write_label_layer(ds, w, raster=values, layer="height")
    ld = read_layer_arrays(ds, w, "height")
    assert meta["dtype"] == "float32" and ld.data.dtype == np.float32
    np.testing.assert_allclose(ld.data[0, 0][ld.valid[0]], values[np.isfinite(values)])
    assert not ld.valid[0, 0, :5].any() and ld.valid[0, 1:].all()


def test_window_labels_validate_then_write(ds_window):
    ds, _ = ds_window
    with pytest.raises(DataError, match="not in the class schema"):
        set_window_labels(ds, {"w0": [1, 9]}, property="present", classes=CLASSES)
    assert "present" not in ds.window("w0").properties
    set_window_labels(ds, {"w0": [1, 2]}, property="present", classes=CLASSES)
    assert ds.window("w0").properties["present"] == [1, 2]


def test_class_schema_validation():
    assert validate_classes([{"value": 3}])[0]["color"].startswith("#")
    with pytest.raises(DataError, match="more than once"):
        validate_classes([{"value": 1}, {"value": 1}])
    with pytest.raises(DataError, match="integer >= 0"):
        validate_classes([{"value": -1}])
    with pytest.raises(DataError, match="#rrggbb"):
        validate_classes([{"value": 1, "color": "blue"}])
