"""The written outputs: a valid COG on the input grid with legend, RFC 7946 GeoJSON, a STAC
Item with the MLM fields, and the xarray the Python API returns."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import box, shape

from earthplat.inference import predict
from tests.unit.earthplat.inference.models import (
    LANDSAT,
    S2_CHIP,
    S2_DATE,
    SLOVENIA,
    WATER,
    WaterIndexModel,
    pico_model,
    real,
)


@pytest.fixture(scope="module")
def water(shared_data, tmp_path_factory):
    """The whole 512 x 512 Sen1Floods11 S2 chip in 4 chunks of 256 px."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("water") / "water.tif"
    result = predict(
        WaterIndexModel(), real(shared_data, S2_CHIP), out, chunk_size=256, date=S2_DATE
    )
    return real(shared_data, S2_CHIP), out, result


def test_cog_is_valid_and_on_the_input_grid(water) -> None:
    src, out, _ = water
    valid, errors, _ = cog_validate(str(out))
    assert valid, errors
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert (b.crs, b.transform, b.width, b.height) == (a.crs, a.transform, a.width, a.height)
        assert b.overviews(1) and b.nodata == 255 and b.descriptions == ("class",)
        assert b.colormap(1)[1] == (0x1F, 0x5F, 0xFF, 255)
        assert json.loads(b.tags()["CLASSES"]) == WATER
        classes = b.read(1)
        b03, b08 = a.read(3).astype(float), a.read(8).astype(float)
    # the model is NDWI-like: water where green beats NIR (in normalised units)
    assert set(np.unique(classes)) == {0, 1}
    assert 0.05 < (classes == 1).mean() < 0.95
    assert classes[b03 > b08 + 500].mean() > 0.95


def test_geojson_is_rfc7946_and_inside_the_input(water) -> None:
    src, out, _ = water
    collection = json.loads(out.with_suffix(".geojson").read_text())
    assert collection["type"] == "FeatureCollection" and "crs" not in collection
    with rasterio.open(src) as a:
        footprint = box(*a.bounds).buffer(1e-9)  # EPSG:4326 already
    values = set()
    for feature in collection["features"]:
        geom = shape(feature["geometry"])
        assert feature["type"] == "Feature" and geom.is_valid and not geom.is_empty
        assert geom.geom_type == "Polygon" and geom.exterior.is_ccw
        lon, lat = np.array(geom.exterior.coords).T
        assert (abs(lon) <= 180).all() and (abs(lat) <= 90).all()
        assert footprint.contains(geom)
        values.add(feature["properties"]["class_value"])
    assert values == {0, 1}
    assert collection["properties"]["classes"] == WATER
    w, s, e, n = collection["bbox"]
    assert footprint.contains(box(w, s, e, n))


def test_stac_item_carries_grid_assets_and_mlm_fields(water) -> None:
    _, out, _ = water
    item = json.loads(out.with_suffix(".item.json").read_text())
    assert item["type"] == "Feature" and item["stac_version"].startswith("1.")
    for key in ("id", "geometry", "bbox", "properties", "assets", "links", "stac_extensions"):
        assert key in item
    props = item["properties"]
    assert props["datetime"] and props["proj:code"] == "EPSG:4326"
    assert props["proj:shape"] == [512, 512]
    assert any("mlm" in e for e in item["stac_extensions"])
    for key in ("mlm:name", "mlm:architecture", "mlm:tasks", "mlm:framework", "mlm:input"):
        assert props[key], key
    assert props["mlm:total_parameters"] == 6  # 1x1 conv: 2 x 2 weights + 2 biases
    (inp,) = props["mlm:input"]
    assert inp["bands"] == ["B03", "B08"] and inp["input"]["shape"][-2:] == [32, 32]
    assert len(inp["value_scaling"]) == 2
    out_classes = props["mlm:output"][0]["classification:classes"]
    assert [c["value"] for c in out_classes] == [0, 1]
    asset = item["assets"]["prediction"]
    assert asset["href"] == "water.tif" and "cloud-optimized" in asset["type"]
    assert asset["raster:bands"][0]["nodata"] == 255
    assert item["assets"]["vector"]["href"] == "water.geojson"
    w, s, e, n = item["bbox"]
    assert -1 < w < e < 0 and 38 < s < n < 38.2  # lon/lat order, Segura valley


def test_python_api_returns_xarray_with_crs(water) -> None:
    _, out, result = water
    assert result.dims == ("band", "y", "x") and result.shape == (1, 512, 512)
    assert result.rio.crs.to_epsg() == 4326
    with rasterio.open(out) as b:
        assert result.rio.transform() == b.transform
        np.testing.assert_array_equal(result.values[0], b.read(1))
    assert result.attrs["path"] == str(out) and json.loads(result.attrs["classes"]) == WATER
    assert not out.with_name("water.tif.parts").exists()  # parts are removed once assembled


def test_out_none_returns_an_in_memory_array(shared_data) -> None:
    result = predict(
        WaterIndexModel(),
        real(shared_data, S2_CHIP),
        None,
        bbox=[-0.78, 38.09, -0.775, 38.095],
        date=S2_DATE,
    )
    assert result.rio.crs.to_epsg() == 4326 and result.shape[0] == 1
    assert 50 <= result.shape[1] <= 60 and isinstance(result.values, np.ndarray)


TIMM = {"name": "timm", "model": "resnet10t"}


@pytest.mark.parametrize(
    ("rel", "spec", "steps"),
    [  # a 5-date stack in UTM 33N (earthplat encoder); Landsat 8 RGB in UTM 10N (timm CNN:
        # the encoder's Landsat band sets need more than these three bands)
        (SLOVENIA, {"inputs": {"sentinel2_l1c": ["B02", "B03", "B04", "B08"]}}, 5),
        (
            LANDSAT,
            {"inputs": {"landsat": ["B2", "B3", "B4"]}, "backbone": TIMM, "patch_size": 1},
            1,
        ),
    ],
    ids=["slovenia-5-dates", "landsat8"],
)
def test_output_lines_up_with_projected_inputs(rel, spec, steps, shared_data, tmp_path) -> None:
    torch.set_num_threads(1)
    src, out = real(shared_data, rel), tmp_path / "p.tif"
    model = pico_model("pixel_regression", chip=64, **spec)
    result = predict(model, src, out, chunk_size=128, overlap=0, outputs=["cog", "stac"])
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert (b.crs, b.transform, b.width, b.height) == (a.crs, a.transform, a.width, a.height)
    assert np.isfinite(result.values).all() and result.values.std() > 0
    item = json.loads(out.with_suffix(".item.json").read_text())
    assert item["properties"]["mlm:input"][0]["input"]["shape"][1] == steps
    assert item["properties"]["proj:code"] == f"EPSG:{result.rio.crs.to_epsg()}"
