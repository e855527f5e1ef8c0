"""Prediction over a dataset reads layers the way training does, and writes nodata wherever the
input is invalid, in every output (issue 11, bugs 1, 2 and 4).

Windows over the corner of the real Sen1Floods11 chip: some inside, some across its edge, some
outside it; a model trained on two modalities (S2 + S1) is fed both.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch

from earthplat.batch import timestamps_of
from earthplat.data.dataset import Dataset
from earthplat.data.ingest import IngestConfig, ingest
from earthplat.data.layer import read_layer_arrays
from earthplat.data.materialize import LayerSpec
from earthplat.data.sources import LocalSource
from earthplat.data.window import windows_from_aoi
from earthplat.inference import predict
from earthplat.inference.dataset import window_sources
from earthplat.nn.export import export_encoder
from earthplat.sensors import S2_L1C_ORDER
from tests.helpers.rasters import FOUR, TWO_DATES, two_date_l2a_style
from tests.unit.earthplat.inference.models import S1_CHIP, S2_CHIP, pico_model, real

QUIET = IngestConfig(progress=False, workers=1)
TWO = {"sentinel2_l1c": list(S2_L1C_ORDER), "sentinel1": ["VV", "VH"]}


@pytest.fixture(scope="module")
def corner(shared_data, tmp_path_factory) -> Dataset:
    """32 px windows around the chip's north-west corner, with s2 and s1 layers."""
    s2, s1 = str(real(shared_data, S2_CHIP)), str(real(shared_data, S1_CHIP))
    with rasterio.open(s2) as src:
        west, north = src.bounds.left, src.bounds.top
    bbox = (west - 0.004, north - 0.006, west + 0.006, north + 0.004)
    windows = windows_from_aoi(bbox, start="2019-09-10", end="2019-09-25", size=32)
    ds = Dataset(tmp_path_factory.mktemp("corner") / "ds")
    ds.write_windows(windows)
    ingest(
        ds,
        windows,
        LayerSpec("s2", "sentinel2_l1c", period="15d"),
        LocalSource([s2], "sentinel2_l1c", datetime="2019-09-18"),
        QUIET,
    )
    ingest(
        ds,
        windows,
        LayerSpec("s1", "sentinel1", period="15d"),
        LocalSource([s1], "sentinel1", datetime="2019-09-17"),
        QUIET,
    )
    return ds


def _input_valid(ds: Dataset, name: str) -> np.ndarray:
    return read_layer_arrays(ds, name, "s2").valid[0] | read_layer_arrays(ds, name, "s1").valid[0]


def test_two_modality_model_over_partial_windows_writes_nodata_where_input_is_invalid(
    corner, tmp_path
):
    torch.set_num_threads(1)
    ds = corner
    names = [w.name for w in ds.windows()]
    done = [n for n in names if ds.layer_done(n, "s2")]
    partial = [n for n in done if 0 < _input_valid(ds, n).mean() < 1]
    assert partial and len(done) < len(names)  # some windows lie wholly outside the chip
    model = pico_model("segmentation", inputs=TWO)
    predict(model, ds.root, tmp_path / "out", outputs=["cog", "geojson"])
    index = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert set(index["windows"]) == set(done)
    assert set(index["skipped"]) == set(names) - set(done)
    assert all("no layer of sentinel2_l1c, sentinel1" in v for v in index["skipped"].values())
    for name in done:
        valid = _input_valid(ds, name)
        with rasterio.open(tmp_path / "out" / index["windows"][name]["cog"]) as src:
            classes = src.read(1)
            nodata = src.nodata
            assert src.transform == ds.window(name).transform
        np.testing.assert_array_equal(classes == nodata, ~valid)
        feats = json.loads((tmp_path / "out" / index["windows"][name]["geojson"]).read_text())
        area = sum(f["properties"]["area_crs_units"] for f in feats["features"])
        assert area == pytest.approx(valid.sum() * 100.0)  # 10 m pixels: only valid ones


def test_the_layer_mask_decides_validity_and_the_layer_periods_the_timestamps(corner, tmp_path):
    torch.set_num_threads(1)
    ds = corner
    name = next(n for n in (w.name for w in ds.windows()) if ds.layer_done(n, "s2")
                and _input_valid(ds, n).all())  # fmt: skip
    # mark the top-left 8 x 8 pixels invalid in both masks (as a cloud mask applied later
    # would): the data COGs keep real values there, only the masks say no
    for layer in ("s2", "s1"):
        path = ds.local_path(ds.layer_path(name, layer, ".mask.tif"))
        with rasterio.open(path) as src:
            mask, profile = src.read(), src.profile
        mask[:, :8, :8] = 0
        profile.update(driver="GTiff")
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(mask)
    model = pico_model("segmentation", inputs=TWO)
    sources = window_sources(model, ds, ds.window(name))
    stamps = timestamps_of(read_layer_arrays(ds, name, "s2").times)
    np.testing.assert_array_equal(sources["sentinel2_l1c"].timestamps(), stamps)
    assert sources["sentinel2_l1c"].timestamps().tolist() == [[10, 8, 2019]]  # not a made-up day
    predict(model, ds.root, tmp_path / "out", windows=[name], outputs=["cog"])
    index = json.loads((tmp_path / "out" / "predictions.json").read_text())
    with rasterio.open(tmp_path / "out" / index["windows"][name]["cog"]) as src:
        classes, nodata = src.read(1), src.nodata
    assert (classes[:8, :8] == nodata).all() and (classes[8:, 8:] != nodata).all()


def test_embeddings_are_nodata_for_patches_without_valid_input(corner, tmp_path):
    torch.set_num_threads(1)
    ds = corner
    name = next(n for n in (w.name for w in ds.windows()) if ds.layer_done(n, "s2")
                and 0.1 < _input_valid(ds, n).mean() < 0.9)  # fmt: skip
    encoder = pico_model("embedding").backbone.encoder
    enc_dir = export_encoder(encoder, tmp_path / "encoder", extra={"chip_size": 32})
    predict(str(enc_dir), ds.root, tmp_path / "out", windows=[name], outputs=["cog", "parquet"])
    index = json.loads((tmp_path / "out" / "predictions.json").read_text())
    files = index["windows"][name]
    valid = read_layer_arrays(ds, name, "s2").valid[0]  # the encoder export reads S2 here
    patch_valid = valid.reshape(8, 4, 8, 4).any((1, 3))  # pico encoder: 4 px patches
    with rasterio.open(tmp_path / "out" / files["cog"]) as src:
        emb = src.read()
    np.testing.assert_array_equal(np.isnan(emb).all(0), ~patch_valid)
    table = gpd.read_parquet(tmp_path / "out" / files["parquet"])
    assert len(table) == patch_valid.sum()


def test_a_layer_of_another_product_is_refused_then_accepted_and_recorded(shared_data, tmp_path):
    from earthplat.data.sources.level import ProductMismatchError

    torch.set_num_threads(1)
    path = two_date_l2a_style(shared_data, tmp_path / "S2_two_dates.tif")
    with rasterio.open(path) as src:
        from rasterio.warp import transform_bounds

        bbox = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    windows = windows_from_aoi(bbox, start="2015-07-01", end="2015-09-29", size=32)[:2]
    ds = Dataset(tmp_path / "ds")
    ds.write_windows(windows)
    source = LocalSource([str(path)], "sentinel2_l2a", bands=FOUR, dates=TWO_DATES)
    ingest(ds, windows, LayerSpec("s2", "sentinel2_l2a", period="45d"), source, QUIET)
    model = pico_model("segmentation", inputs={"sentinel2_l1c": FOUR}, num_periods=2)
    with pytest.raises(ProductMismatchError) as err:
        predict(model, ds.root, tmp_path / "refused")
    assert "trained on sentinel2_l1c" in str(err.value) and "--allow_substitution" in str(err.value)
    predict(model, ds.root, tmp_path / "out", outputs=["cog", "stac"], allow_substitution=True)
    index = json.loads((tmp_path / "out" / "predictions.json").read_text())
    name = next(iter(index["windows"]))
    assert index["substitutions"][name][0]["from"] == "sentinel2_l2a"
    item = json.loads((tmp_path / "out" / index["windows"][name]["stac"]).read_text())
    assert item["properties"]["earthplat:substitutions"][0]["to"] == "sentinel2_l1c"
    with rasterio.open(tmp_path / "out" / index["windows"][name]["cog"]) as src:
        assert "sentinel2_l2a" in src.tags()["SUBSTITUTIONS"]
        assert src.tags()["INPUT_DATES"] == "2015-07-01,2015-08-15"  # the layer's periods


def test_a_raster_file_of_another_product_is_refused_for_the_model(shared_data, tmp_path):
    from earthplat.inference.errors import InferenceError

    path = two_date_l2a_style(shared_data, tmp_path / "S2_two_dates.tif")
    model = pico_model("segmentation", inputs={"sentinel2_l1c": FOUR}, num_periods=2)
    with pytest.raises(InferenceError, match=r"is sentinel2_l2a .*PROCESSING_LEVEL.*model"):
        predict(model, path, tmp_path / "x.tif", bands=FOUR, dates=TWO_DATES)
    out = predict(
        model, path, tmp_path / "y.tif", bands=FOUR, dates=TWO_DATES, allow_substitution=True
    )
    assert out.sizes["band"] == 1
    with rasterio.open(tmp_path / "y.tif") as src:
        assert json.loads(src.tags()["SUBSTITUTIONS"])[0]["from"] == "sentinel2_l2a"
        assert src.tags()["INPUT_DATES"] == ",".join(TWO_DATES)
