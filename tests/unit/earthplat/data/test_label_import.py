"""Labels from a user's own files (``earthplat.data.label_import.label_dataset``), on windows
over the real Slovenia tile (``s2_slovenia_eolearn``).

The label files are the real ones (``LULC.gpkg``: 88 land-use polygons; ``lulc.tif``: the same
polygons rasterised, class names in its ``CLASSES`` tag; ``dem.tif``: elevation in metres) or
written in ``tmp_path`` from them (points, CSVs). Every expectation is computed independently of
the code under test, in the tile's own CRS (EPSG:32633) with shapely and rasterio.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from earthplat.data.dataset import Dataset
from earthplat.data.label_import import label_dataset
from earthplat.data.labels import CLASS_NODATA, read_boxes, read_class_raster
from earthplat.data.layer import read_layer_arrays
from earthplat.data.window import GridChoice, Window, windows_from_aoi
from earthplat.errors import DataError
from tests.conftest import MISSING

START, END = "2017-12-01", "2018-03-01"
NAMES = ["artificial surface", "cultivated land", "forest", "grassland", "schrubland"]
"""The non-blank LULC_NAME values of LULC.gpkg, sorted (its shrubland is spelt 'schrubland')."""
LULC_TAG = {
    1: "cultivated land",
    2: "forest",
    3: "grassland",
    4: "shrubland",
    8: "artificial surface",
}
"""lulc.tif's CLASSES tag without 0 = no data."""


@pytest.fixture(scope="module")
def tile(shared_data: Path) -> Path:
    path = shared_data / "real" / "s2_slovenia_eolearn"
    if not (path / "lulc.tif").is_file() or not (path / "original" / "LULC.gpkg").is_file():
        pytest.skip(f"{MISSING} {path}/lulc.tif and original/LULC.gpkg")
    return path


@pytest.fixture(scope="module")
def polygons(tile: Path):
    """LULC.gpkg as read by geopandas (EPSG:32633)."""
    import geopandas as gpd

    frame = gpd.read_file(tile / "original" / "LULC.gpkg")
    assert frame.crs.to_epsg() == 32633 and len(frame) == 88
    return frame


def _windows(tile: Path, size: int, *, margin: float = 0.0) -> list[Window]:
    """``windows_from_aoi`` over the tile (grown by ``margin`` degrees), on lulc.tif's own grid
    at its pixel size (geometric mean of its 9.995 x 9.998 m pixels)."""
    import rasterio
    from rasterio.warp import transform_bounds

    lulc = str(tile / "lulc.tif")
    with rasterio.open(lulc) as src:
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        res = math.sqrt(abs(src.transform.a * src.transform.e))
    return windows_from_aoi(
        (w - margin, s - margin, e + margin, n + margin),
        start=START,
        end=END,
        size=size,
        resolution=res,
        grid_for=lambda lon, lat: GridChoice.of_raster(lulc),
    )


def _over_tile(tile: Path, size: int) -> list[Window]:
    """The windows of ``_windows`` that lulc.tif covers, at least partly."""
    lulc = str(tile / "lulc.tif")
    return [w for w in _windows(tile, size) if np.isfinite(read_class_raster(lulc, w)).any()]


def _dataset(tmp_path: Path, windows: list[Window]) -> Dataset:
    ds = Dataset(tmp_path / "ds")
    ds.write_windows(windows)
    return ds


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` -> the sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _footprint(w: Window):
    from shapely.geometry import box

    return box(*w.projected_bounds)


def _unique_mode(values) -> str | None:
    """The most common value, or None on a tie (so that no test depends on tie order)."""
    counts = Counter(values).most_common(2)
    if not counts or (len(counts) == 2 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def _class_names(ds: Dataset, name: str) -> dict[int, str]:
    return {c["value"]: c["label"] for c in ds.class_schema(name)}


# --- (a) polygons rasterised as a layer -----------------------------------------------------
def test_polygons_layer_reproduces_lulc_tif_and_keeps_class_names(tmp_path, tile, polygons):
    windows = _windows(tile, 50)
    ds = _dataset(tmp_path, windows)
    report = label_dataset(ds, tile / "original" / "LULC.gpkg", column="LULC_NAME", name="lulc")

    assert report.kind == "layer" and report.name == "lulc"
    # class names are kept, and the 4 polygons with a blank name (LULC_ID 0, no data) make no class
    names = _class_names(ds, "lulc")
    assert sorted(names.values()) == NAMES
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["classes"]["lulc"]
    assert sorted(report.labelled) == sorted(w.name for w in windows)

    id_of = dict(zip(polygons["LULC_NAME"], polygons["LULC_ID"], strict=True))
    covered = agree = blank = blank_unlabelled = 0
    for w in windows:
        layer = read_layer_arrays(ds, w, "lulc")
        codes = layer.data[0, 0]
        assert codes.shape == (w.height, w.width)
        assert layer.metadata["modality"] == "label"
        ids = np.full(codes.shape, -1)
        for value, label in names.items():
            ids[codes == value] = id_of[label]
        # lulc.tif on the window grid, its 0 kept (nodata=255 is a value it never holds)
        ref = read_class_raster(str(tile / "lulc.tif"), w, nodata=255)
        inside = np.isfinite(ref)
        classed = inside & (ref > 0)
        covered += classed.sum()
        agree += (ids[classed] == ref[classed]).sum()
        blank += (inside & (ref == 0)).sum()
        blank_unlabelled += (inside & (ref == 0) & (codes == CLASS_NODATA)).sum()
    assert covered == 10100 - 155  # every classed pixel of lulc.tif lies in some window
    assert agree / covered >= 0.995, f"{agree}/{covered} pixels agree with lulc.tif"
    assert blank == 155 and blank_unlabelled / blank >= 0.95


def test_geojson_in_wgs84_gives_the_same_layer_as_the_geopackage(tmp_path, tile, polygons):
    windows = [w for w in _windows(tile, 50) if w.name.endswith("_0_0") or "_50_50" in w.name]
    assert len(windows) == 2
    geojson = tmp_path / "lulc.geojson"
    polygons[["LULC_NAME", "geometry"]].to_crs("EPSG:4326").to_file(geojson, driver="GeoJSON")
    a = _dataset(tmp_path / "a", windows)
    b = _dataset(tmp_path / "b", windows)
    label_dataset(a, tile / "original" / "LULC.gpkg", column="LULC_NAME")
    label_dataset(b, geojson, column="LULC_NAME")
    assert a.class_schema("label") == b.class_schema("label")
    for w in windows:
        ours, theirs = read_layer_arrays(a, w, "label"), read_layer_arrays(b, w, "label")
        assert (ours.data[0, 0] != CLASS_NODATA).mean() > 0.9
        # the GeoJSON went through WGS84 and back: edge pixels may differ by a hair
        assert (ours.data == theirs.data).mean() >= 0.999


# --- (b) points and polygons as window properties; points as detection boxes -----------------
def _points_file(tmp_path: Path, polygons) -> tuple[Path, object]:
    """One point per named polygon (its representative point), column ``class``, in the
    tile's CRS (EPSG:32633, not WGS84), as a GeoPackage."""
    import geopandas as gpd

    named = polygons[polygons["LULC_NAME"].str.strip() != ""]
    points = gpd.GeoDataFrame(
        {"class": named["LULC_NAME"].to_numpy()},
        geometry=named.representative_point().to_numpy(),
        crs=polygons.crs,
    )
    path = tmp_path / "points.gpkg"
    points.to_file(path, driver="GPKG")
    return path, points


def test_points_give_the_most_common_value_as_a_window_property(tmp_path, tile, polygons):
    windows = _windows(tile, 25)
    ds = _dataset(tmp_path, windows)
    path, points = _points_file(tmp_path, polygons)
    report = label_dataset(ds, path)  # points -> property; column "class" found by itself

    assert report.kind == "property"
    names = _class_names(ds, "label")
    assert sorted(names.values()) == NAMES
    got = {w.name: w.properties.get("label") for w in ds.windows()}
    checked = 0
    for w in windows:
        inside = points[points.within(_footprint(w))]["class"].tolist()
        if not inside:
            assert got[w.name] is None and w.name in report.unlabelled
            assert "points.gpkg" in report.unlabelled[w.name]
            continue
        expected = _unique_mode(inside)
        if expected is not None:
            assert names[got[w.name]] == expected, w.name
            checked += 1
    assert checked >= 10 and len(report.unlabelled) >= 5


def test_polygons_as_properties_prefer_the_value_under_the_window_centre(tmp_path, tile, polygons):
    windows = _windows(tile, 25)
    ds = _dataset(tmp_path, windows)
    report = label_dataset(
        ds, tile / "original" / "LULC.gpkg", kind="property", column="LULC_NAME", name="lc"
    )
    assert report.kind == "property" and not report.unlabelled
    names = _class_names(ds, "lc")
    got = {w.name: names[w.properties["lc"]] for w in ds.windows()}
    named = polygons[polygons["LULC_NAME"].str.strip() != ""]
    centre_differs = checked = 0
    for w in windows:
        box = _footprint(w)
        hits = named[named.intersects(box)]["LULC_NAME"].tolist()
        under = named[named.contains(box.centroid)]["LULC_NAME"].tolist()
        expected = _unique_mode(under) if under else _unique_mode(hits)
        if expected is None:
            continue
        assert got[w.name] == expected, w.name
        checked += 1
        centre_differs += under != [] and expected != _unique_mode(hits)
    # the preference is seen: in several windows the centre's class is not the majority's
    assert checked >= 25 and centre_differs >= 3


def test_points_as_a_layer_give_detection_boxes(tmp_path, tile, polygons):
    windows = _windows(tile, 50)
    ds = _dataset(tmp_path, windows)
    path, points = _points_file(tmp_path, polygons)
    report = label_dataset(ds, path, kind="layer", name="objects")
    assert report.kind == "layer"
    value_of = {label: value for value, label in _class_names(ds, "objects").items()}
    boxes_seen = 0
    for w in windows:
        inside = points[points.within(_footprint(w))]
        geojson = tmp_path / "ds" / "windows" / w.name / "objects.geojson"
        if inside.empty:
            assert w.name in report.unlabelled and not geojson.exists()
            continue
        assert geojson.is_file() and w.name in report.labelled
        t = w.transform
        expected = sorted(
            ((p.x - t.c) / t.a, (p.y - t.f) / t.e, value_of[c])
            for p, c in zip(inside.geometry, inside["class"], strict=True)
        )
        boxes = read_boxes(ds, w, "objects")
        got = sorted((b["box"][0], b["box"][1], b["class"]) for b in boxes)
        assert len(got) == len(expected)
        for (gx, gy, gc), (ex, ey, ec) in zip(got, expected, strict=True):
            assert (
                gc == ec and gx == pytest.approx(ex, abs=1e-3) and gy == pytest.approx(ey, abs=1e-3)
            )
        assert all(b["box"][0] == b["box"][2] and b["box"][1] == b["box"][3] for b in boxes)
        codes = read_layer_arrays(ds, w, "objects").data[0, 0]
        per_pixel = Counter((int(y), int(x)) for x, y, _ in expected)
        for x, y, c in expected:  # each point burns the pixel it falls in (alone there)
            if per_pixel[int(y), int(x)] == 1:
                assert codes[int(y), int(x)] == c
        assert (codes != CLASS_NODATA).sum() == len(per_pixel)
        boxes_seen += len(boxes)
    assert boxes_seen >= 40


# --- (c) a CSV of window names and class names ------------------------------------------------
def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_csv_labels_and_relabelling_reuse_and_extend_the_schema(tmp_path, tile):
    windows = _windows(tile, 50)[:5]
    ds = _dataset(tmp_path, windows)
    w0, w1, w2, w3, w4 = (w.name for w in windows)
    # a notes column before the class: the value column is found by its name, not its place
    first = _csv(
        tmp_path / "first.csv",
        ["window", "notes", "class"],
        [[w0, "checked", "forest"], [w1, "", "grassland"], [w2, "x", "forest"]],
    )
    report = label_dataset(ds, first, name="lc")
    assert report.kind == "property" and sorted(report.labelled) == sorted([w0, w1, w2])
    assert set(report.unlabelled) == {w3, w4}
    schema = {c["label"]: c["value"] for c in ds.class_schema("lc")}
    assert set(schema) == {"forest", "grassland"}
    props = {w.name: w.properties.get("lc") for w in ds.windows()}
    assert props[w0] == props[w2] == schema["forest"] and props[w1] == schema["grassland"]

    second = _csv(tmp_path / "second.csv", ["name", "class"], [[w2, "grassland"], [w3, "urban"]])
    report = label_dataset(ds, second, name="lc")
    extended = {c["label"]: c["value"] for c in ds.class_schema("lc")}
    assert {k: extended[k] for k in schema} == schema  # old names keep their values
    assert set(extended) == {"forest", "grassland", "urban"}
    assert extended["urban"] not in schema.values()
    props = {w.name: w.properties.get("lc") for w in ds.windows()}
    assert props[w0] == schema["forest"]  # not in the second CSV: left as it was
    assert props[w2] == schema["grassland"] and props[w3] == extended["urban"]
    assert props[w4] is None
    assert report.classes == ds.class_schema("lc")


def test_csv_naming_unknown_windows_is_an_error_that_names_them(tmp_path, tile):
    windows = _windows(tile, 50)[:3]
    ds = _dataset(tmp_path, windows)
    before = _snapshot(tmp_path / "ds")
    path = _csv(
        tmp_path / "bad.csv",
        ["window", "class"],
        [[windows[0].name, "forest"], ["nowhere_1", "forest"], ["nowhere_2", "grassland"]],
    )
    with pytest.raises(DataError, match="nowhere_1, nowhere_2"):
        label_dataset(ds, path)
    assert _snapshot(tmp_path / "ds") == before


def test_csv_rows_of_windows_left_out_by_windows_are_skipped(tmp_path, tile):
    windows = _windows(tile, 50)[:3]
    ds = _dataset(tmp_path, windows)
    rows = [[w.name, c] for w, c in zip(windows, ["forest", "grassland", "forest"], strict=True)]
    path = _csv(tmp_path / "all.csv", ["window", "class"], rows)
    report = label_dataset(ds, path, windows=[windows[1].name])
    assert report.labelled == [windows[1].name] and not report.unlabelled
    props = {w.name: w.properties.get("label") for w in ds.windows()}
    assert props[windows[0].name] is None and props[windows[2].name] is None
    assert _class_names(ds, "label")[props[windows[1].name]] == "grassland"


# --- (d) a class raster with a CLASSES tag --------------------------------------------------
def test_class_raster_names_its_classes_and_reports_windows_it_misses(tmp_path, tile):
    windows = _windows(tile, 50, margin=0.01)  # a ring of windows wholly outside lulc.tif
    ds = _dataset(tmp_path, windows)
    lulc = str(tile / "lulc.tif")
    report = label_dataset(ds, lulc, name="lulc")

    assert report.kind == "layer"
    assert _class_names(ds, "lulc") == LULC_TAG  # the tag's names, without 0 = no data
    covered = {w.name for w in windows if np.isfinite(read_class_raster(lulc, w)).any()}
    assert 4 <= len(covered) < len(windows)
    assert set(report.labelled) == covered
    assert set(report.unlabelled) == {w.name for w in windows} - covered
    for w in windows:
        if w.name not in covered:
            assert not ds.layer_done(w, "lulc") and "lulc.tif" in report.unlabelled[w.name]
            continue
        codes = read_layer_arrays(ds, w, "lulc").data[0, 0]
        ref = read_class_raster(lulc, w)  # NaN: outside, or 0 = no data
        np.testing.assert_array_equal(codes, np.where(np.isfinite(ref), ref, CLASS_NODATA))
        assert 0 not in codes


def test_class_raster_whose_tag_contradicts_the_dataset_schema_is_refused(tmp_path, tile):
    ds = _dataset(tmp_path, _over_tile(tile, 50))
    ds.set_class_schema("lulc", [{"value": 1, "label": "water"}, {"value": 2, "label": "forest"}])
    before = _snapshot(tmp_path / "ds")
    with pytest.raises(DataError, match=r"code 1 'cultivated land'.*1=water.*--name"):
        label_dataset(ds, tile / "lulc.tif", name="lulc")
    assert _snapshot(tmp_path / "ds") == before


# --- (e) regression values --------------------------------------------------------------------
def test_regression_values_give_float_layers_and_properties_without_a_schema(
    tmp_path, tile, polygons
):
    ds = _dataset(tmp_path, _over_tile(tile, 50))
    dem = str(tile / "dem.tif")
    report = label_dataset(ds, dem, name="height")
    assert report.kind == "layer" and report.classes is None
    assert ds.class_schema("height") is None
    means = {}
    for name in report.labelled:
        w = ds.window(name)
        layer = read_layer_arrays(ds, w, "height")
        ref = read_class_raster(dem, w)
        assert layer.data.dtype == np.float32
        np.testing.assert_array_equal(layer.valid[0], np.isfinite(ref))
        np.testing.assert_allclose(layer.data[0, 0][layer.valid[0]], ref[np.isfinite(ref)])
        means[name] = float(np.nanmean(ref))
    assert len(means) == len(ds.windows()) and all(664 <= m <= 801 for m in means.values())

    path = _csv(
        tmp_path / "h.csv", ["window", "value"], [[k, f"{v:.3f}"] for k, v in means.items()]
    )
    report = label_dataset(ds, path, name="mean_height")
    assert report.classes is None and ds.class_schema("mean_height") is None
    for w in ds.windows(list(means)):
        assert isinstance(w.properties["mean_height"], float)
        assert w.properties["mean_height"] == pytest.approx(means[w.name], abs=1e-3)

    report = label_dataset(ds, tile / "original" / "LULC.gpkg", column="AREA", name="area")
    assert report.classes is None and ds.class_schema("area") is None
    w = ds.window(report.labelled[0])
    layer = read_layer_arrays(ds, w, "area")
    assert layer.data.dtype == np.float32 and layer.valid[0].any()
    areas = set(polygons["AREA"].astype(np.float32))
    assert set(np.unique(layer.data[0, 0][layer.valid[0]])) <= areas


# --- (f) errors: a DataError, and nothing written ------------------------------------------
@pytest.mark.parametrize(
    "case, match",
    [
        ("missing", "does not exist"),
        ("suffix", "unknown file kind '.xlsx'"),
        ("no_default_column", "--column"),
        ("unknown_column", "no label column nope.*--column"),
        ("csv_as_layer", "drop --kind layer"),
    ],
)
def test_bad_label_files_raise_and_write_nothing(tmp_path, tile, case, match):
    windows = _windows(tile, 50)[:3]
    ds = _dataset(tmp_path, windows)
    label_dataset(ds, tile / "original" / "LULC.gpkg", column="LULC_NAME")  # an existing label
    gpkg = tile / "original" / "LULC.gpkg"
    csv_file = _csv(tmp_path / "l.csv", ["window", "class"], [[windows[0].name, "forest"]])
    (tmp_path / "labels.xlsx").write_bytes(b"PK\x03\x04 not a label file")
    calls = {
        "missing": lambda: label_dataset(ds, tmp_path / "absent.geojson"),
        "suffix": lambda: label_dataset(ds, tmp_path / "labels.xlsx"),
        "no_default_column": lambda: label_dataset(ds, gpkg),  # no class/label/value column
        "unknown_column": lambda: label_dataset(ds, gpkg, column="nope"),
        "csv_as_layer": lambda: label_dataset(ds, csv_file, kind="layer"),
    }
    before = _snapshot(tmp_path / "ds")
    with pytest.raises(DataError, match=match):
        calls[case]()
    assert _snapshot(tmp_path / "ds") == before
