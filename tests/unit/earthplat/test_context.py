"""Context overviews around a window (``earthplat.data.context``) on real imagery: the grid, a
valid mask that is exactly the scene's footprint, the period with most valid pixels, none for
label layers, and a failure that leaves the layer standing."""

from __future__ import annotations

import io
import logging
import shutil

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window as RioWindow

from earthplat.data import context as context_module
from earthplat.data.context import (
    ContextConfig,
    build_context,
    context_bounds_wgs84,
    context_layer,
    context_metadata,
    context_window,
)
from earthplat.data.dataset import Dataset
from earthplat.data.layer import LayerReader
from earthplat.data.materialize import LayerSpec, materialize
from earthplat.data.sources import LocalSource
from earthplat.data.window import Window
from earthplat.errors import DataError

EUROSAT = "real/eurosat_ms_subset/Forest/Forest_1031.tif"
SLOVENIA = "real/s2_slovenia_eolearn/s2_l1c_5dates_13bands.tif"
LULC = "real/s2_slovenia_eolearn/lulc.tif"
FOUR = ["B02", "B03", "B04", "B08"]


def _path(shared_data, rel: str) -> str:
    path = shared_data / rel
    if not path.is_file():
        pytest.skip(f"missing component: {path}")
    return str(path)


def _centres_inside(grid: Window, raster: str) -> np.ndarray:
    """[H, W] True where a pixel centre of ``grid`` lies inside ``raster``'s footprint (same
    CRS): what GDAL's warper, deciding by pixel centre, calls covered."""
    with rasterio.open(raster) as src:
        assert src.crs.to_string() == grid.crs
        inverse, w, h = ~src.transform, src.width, src.height
    cols, rows = np.meshgrid(np.arange(grid.width) + 0.5, np.arange(grid.height) + 0.5)
    c, r = inverse @ (grid.transform @ (cols, rows))
    return (c >= 0) & (c < w) & (r >= 0) & (r < h)


@pytest.fixture
def half_over_patch(shared_data, tmp_path):
    """A 64 px window half over a real EuroSAT patch (no nodata value: only the footprint tells
    covered from not), materialised with its context overview."""
    patch = _path(shared_data, EUROSAT)
    with rasterio.open(patch) as src:
        crs, left, top = src.crs.to_string(), src.bounds.left, src.bounds.top
    c0, r0 = int(left // 10) + 32, int(-top // 10) + 10
    w = Window("half", crs, 10.0, (c0, r0, c0 + 64, r0 + 64), "2018-01-01", "2019-01-01")
    ds = Dataset(tmp_path / "ds")
    ds.write_windows([w])
    source = LocalSource([patch], "sentinel2_l1c", datetime="2018-06-01")
    layer = LayerSpec("s2", "sentinel2_l1c", period="365d")
    meta = materialize(ds, w, layer, source)
    return ds, w, patch, meta, layer, source


def test_grid_is_the_window_grown_by_the_margin_at_the_coarser_resolution(half_over_patch):
    ds, w, _, meta, _, _ = half_over_patch
    ctx = context_metadata(ds, w, "s2")
    assert ctx is not None and ctx["context"]["layer"] == "s2"
    left, bottom, right, top = w.projected_bounds
    with rasterio.open(ds.local_path(ds.layer_path(w, "s2.context"))) as src:
        assert src.crs.to_string() == w.crs
        assert src.res == (40.0, 40.0)
        assert (src.width, src.height) == (5 * 64 // 4, 5 * 64 // 4)
        got = tuple(src.bounds)
        assert src.count == len(meta["bands"])  # one period x the layer's bands
    assert got == pytest.approx((left - 1280, bottom - 1280, right + 1280, top + 1280))
    assert ctx["shape"] == [1, len(meta["bands"]), 80, 80] and ctx["bands"] == meta["bands"]
    assert ctx["context"]["factor"] == 4.0 and ctx["context"]["margin"] == 2.0
    # WGS84 bounds hold the window's footprint
    lon0, lat0, lon1, lat1 = context_bounds_wgs84(ctx)
    wb = w.geometry_wgs84().bounds
    assert lon0 < wb[0] < wb[2] < lon1 and lat0 < wb[1] < wb[3] < lat1
    # both sizes are configurable
    g = context_window(w, ContextConfig(margin=1.0, factor=2.0))
    assert (g.width, g.height, g.resolution) == (96, 96, 20.0)
    assert g.projected_bounds == pytest.approx((left - 640, bottom - 640, right + 640, top + 640))
    # a huge window gets coarser pixels rather than a huge overview
    big = Window("big", w.crs, 10.0, (0, 0, 10_000, 10_000), w.start, w.end)
    g = context_window(big, ContextConfig(max_size=1000))
    assert max(g.width, g.height) <= 1000 and g.resolution > 40.0


def test_valid_mask_is_exactly_the_scene_footprint(half_over_patch):
    ds, w, patch, _, _, _ = half_over_patch
    reader = LayerReader(ds, w, context_layer("s2"))
    data, valid = reader.read()  # [1, C, 80, 80], [1, 80, 80]
    expected = _centres_inside(context_window(w), patch)
    assert 0 < expected.mean() < 0.1  # the patch fills only part of the context extent
    np.testing.assert_array_equal(valid[0], expected)
    assert (data[0][:, ~valid[0]] == 0).all()  # nodata where no scene covers
    assert (data[0][:, valid[0]] > 0).all()
    assert reader.metadata["valid_fraction"] == [pytest.approx(expected.mean())]
    # not a layer of the window: training, export and the tile listing never see it
    assert ds.layers(w) == ["s2"]


def test_render_tile_draws_the_overview_inside_the_coverage_only(half_over_patch):
    from PIL import Image

    from labeling.tiles import render_tile, tile_for_lonlat

    ds, w, patch, _, _, _ = half_over_patch
    path = ds.local_path(ds.layer_path(w, context_layer("s2")))
    with rasterio.open(patch) as src:
        from rasterio.warp import transform_bounds

        p0, q0, p1, q1 = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    z, x, y = tile_for_lonlat((p0 + p1) / 2, (q0 + q1) / 2, 16)
    img = np.asarray(Image.open(io.BytesIO(render_tile(path, t=0, z=z, x=x, y=y))))
    assert img.shape == (256, 256, 4) and (img[..., 3] == 255).any()
    assert img[img[..., 3] == 255][:, :3].std() > 3  # real imagery, not a flat fill
    lon0, lat0, lon1, lat1 = context_bounds_wgs84(ds.layer_metadata(w, context_layer("s2")))
    corner = tile_for_lonlat(lon0 + 0.1 * (lon1 - lon0), lat1 - 0.1 * (lat1 - lat0), 16)
    img = np.asarray(Image.open(io.BytesIO(render_tile(path, t=0, z=corner[0], x=corner[1],
                                                       y=corner[2]))))  # fmt: skip
    assert (img[..., 3] == 0).all()  # inside the overview, outside the scene: transparent


def _crop(shared_data, out, date: str, cols: int) -> str:
    """The real Slovenia tile's ``date`` (bands B02, B03, B04, B08), left ``cols`` columns, with
    dated band descriptions."""
    with rasterio.open(_path(shared_data, SLOVENIA)) as src:
        descriptions = list(src.descriptions)
        index = [descriptions.index(f"{date}_{b}") + 1 for b in FOUR]
        window = RioWindow(0, 0, cols, src.height)
        data = src.read(index, window=window)
        profile = src.profile | {
            "count": 4,
            "width": cols,
            "transform": src.window_transform(window),
            "driver": "GTiff",
            "nodata": 0,
        }
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        for i, b in enumerate(FOUR, start=1):
            dst.set_band_description(i, f"{date}_{b}")
    return str(out)


def test_the_period_with_most_valid_pixels_is_shown(shared_data, tmp_path):
    # July: the left half of the tile only; August (later): all of it
    july = _crop(shared_data, tmp_path / "july.tif", "2015-07-11", 50)
    august = _crop(shared_data, tmp_path / "august.tif", "2015-08-20", 100)
    with rasterio.open(july) as src:
        left, top = src.bounds.left, src.bounds.top
    c0, r0 = int(left // 10) + 25, int(-top // 10) + 40  # inside both crops
    w = Window("w", "EPSG:32633", 10.0, (c0, r0, c0 + 20, r0 + 20), "2015-07-01", "2015-08-30")
    ds = Dataset(tmp_path / "ds")
    ds.write_windows([w])
    source = LocalSource([july, august], "sentinel2_l1c")
    meta = materialize(ds, w, LayerSpec("s2", "sentinel2_l1c", period="30d"), source)
    assert len(meta["periods"]) == 2 and meta["missing_periods"] == []
    ctx = context_metadata(ds, w, "s2")
    assert ctx["context"]["period_index"] == 1
    assert ctx["context"]["period"] == meta["periods"][1] and ctx["periods"] == [meta["periods"][1]]
    assert [a[:10] for a in ctx["acquired"]] == ["2015-08-20"]
    grid = context_window(w)
    valid = LayerReader(ds, w, "s2.context").read_valid()[0]
    np.testing.assert_array_equal(valid, _centres_inside(grid, august))
    assert _centres_inside(grid, july).mean() < valid.mean() < 1
    # the overview shows what the layer shows, 4 x 4 pixels to one: the window is 5 x 5 of its
    # pixels at offset (10, 10)
    data, _ = LayerReader(ds, w, "s2.context").read()
    layer, _ = LayerReader(ds, w, "s2").read(periods=[1])
    coarse = data[0, :, 10:15, 10:15].astype(float).ravel()
    blocks = layer[0].reshape(4, 5, 4, 5, 4).mean(axis=(2, 4)).ravel()
    assert np.corrcoef(coarse, blocks)[0, 1] > 0.9


def test_a_label_layer_gets_no_context(shared_data, tmp_path):
    lulc = _path(shared_data, LULC)
    with rasterio.open(lulc) as src:
        crs, left, top = src.crs.to_string(), src.bounds.left, src.bounds.top
    c0, r0 = int(left // 10) + 30, int(-top // 10) + 30
    w = Window("w", crs, 10.0, (c0, r0, c0 + 20, r0 + 20), "2018-01-01", "2019-01-01")
    ds = Dataset(tmp_path / "ds")
    ds.write_windows([w])
    layer = LayerSpec("label", "label")
    source = LocalSource([lulc], "label", datetime="2018-01-15")
    materialize(ds, w, layer, source)
    assert ds.layer_done(w, "label") and context_metadata(ds, w, "label") is None
    assert not list((tmp_path / "ds" / "windows" / "w").glob("*.context*"))
    assert build_context(ds, w, layer, source.items(), source.describe()) is None


def test_a_failing_context_leaves_the_layer_standing(half_over_patch, monkeypatch, caplog):
    ds, w, _, _, layer, source = half_over_patch
    shutil.rmtree(ds.local_path(ds.window_dir(w)))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(context_module, "write_layer", broken)
    with caplog.at_level(logging.WARNING, logger="earthplat.data.context"):
        meta = materialize(ds, w, layer, source)
    assert ds.layer_done(w, "s2") and meta["layer"] == "s2"
    assert context_metadata(ds, w, "s2") is None
    (record,) = [r for r in caplog.records if r.name == "earthplat.data.context"]
    assert record.levelno == logging.WARNING
    assert "no context overview for layer 's2'" in record.getMessage()
    assert "disk full" in record.getMessage()


def test_context_can_be_turned_off_sized_and_is_rebuilt_with_force(half_over_patch):
    ds, w, _, _, layer, source = half_over_patch
    first = context_metadata(ds, w, "s2")["created"]
    shutil.rmtree(ds.local_path(ds.window_dir(w)))
    materialize(ds, w, layer, source, context=False)
    assert ds.layer_done(w, "s2") and context_metadata(ds, w, "s2") is None
    materialize(ds, w, layer, source, force=True, context=ContextConfig(margin=1.0))
    assert context_metadata(ds, w, "s2")["shape"][2:] == [48, 48]
    materialize(ds, w, layer, source, force=True)
    again = context_metadata(ds, w, "s2")
    assert again["created"] != first and again["shape"][2:] == [80, 80]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"margin": -1}, "margin"), ({"factor": 0.5}, "factor"), ({"max_size": 0}, "max_size")],
)
def test_bad_context_config_is_refused_naming_the_field(kwargs, named):
    with pytest.raises(DataError, match=named):
        ContextConfig(**kwargs)
