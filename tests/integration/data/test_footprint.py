"""Ingest never invents pixels: a window's valid pixels are those its sources cover.

Regression tests for issue 11, bugs 1 and 5, on real pixels: the EuroSAT patches (no nodata
value, the case where pixels outside a scene came back valid) and a two-date, four-band
L2A-style file without band descriptions made from the Slovenia stack.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as warp_points

from earthplat.data.dataset import Dataset
from earthplat.data.ingest import IngestConfig, ingest
from earthplat.data.layer import read_layer_arrays
from earthplat.data.materialize import LayerSpec
from earthplat.data.sources import LocalSource
from earthplat.data.window import Window, windows_from_aoi
from tests.helpers.rasters import TWO_DATES, two_date_l2a_style

QUIET = IngestConfig(progress=False, workers=1)
EUROSAT = "real/eurosat_ms_subset/Forest/Forest_1031.tif"


def true_coverage(window: Window, raster: str) -> float:
    """Share of the window's pixel centres inside the raster's footprint (any CRS)."""
    with rasterio.open(raster) as src:
        inverse, crs, w, h = ~src.transform, src.crs, src.width, src.height
    cols, rows = np.meshgrid(np.arange(window.width) + 0.5, np.arange(window.height) + 0.5)
    xs, ys = window.transform * (cols.ravel(), rows.ravel())
    xs, ys = warp_points(window.crs, crs, xs, ys)
    c, r = inverse * (np.asarray(xs), np.asarray(ys))
    return float(((c >= 0) & (c < w) & (r >= 0) & (r < h)).mean())


def test_window_half_over_a_patch_without_nodata_is_valid_only_over_the_patch(
    shared_data, tmp_path
):
    patch = str(shared_data / EUROSAT)
    with rasterio.open(patch) as src:
        assert src.nodata is None  # pixels outside it cannot be told apart by value
        crs, left, top = src.crs.to_string(), src.bounds.left, src.bounds.top
    # 32 px right of and 10 px below the patch's corner, on the zone's 10 m grid
    c0, r0 = int(left // 10) + 32, int(-top // 10) + 10
    w = Window("half", crs, 10.0, (c0, r0, c0 + 64, r0 + 64), "2018-01-01", "2019-01-01")
    ds = Dataset(tmp_path / "ds")
    ds.write_windows([w])
    source = LocalSource([patch], "sentinel2_l1c", datetime="2018-06-01")
    report = ingest(ds, [w], LayerSpec("s2", "sentinel2_l1c", period="365d"), source, QUIET)
    assert report.done == ["half"]
    ld = read_layer_arrays(ds, w, "s2")
    expected = true_coverage(w, patch)
    assert 0.3 < expected < 0.6
    assert ld.valid.mean() == pytest.approx(expected, abs=1 / 64)  # at most one edge column
    assert ld.metadata["valid_fraction"][0] == pytest.approx(ld.valid.mean())
    assert (ld.data[0][:, ~ld.valid[0]] == 0).all()  # nodata where nothing was observed
    assert (ld.data[0][:, ld.valid[0]] > 0).all()


@pytest.fixture(scope="module")
def two_date_l2a(shared_data, tmp_path_factory) -> tuple[str, list[str]]:
    out = tmp_path_factory.mktemp("l2a") / "S2_L2A_two_dates.tif"
    path = two_date_l2a_style(shared_data, out)
    with rasterio.open(path) as check:
        assert not any(check.descriptions) and check.nodata is None
    return str(path), list(TWO_DATES)


def test_two_date_file_over_partly_and_wholly_outside_windows(two_date_l2a, tmp_path):
    path, dates = two_date_l2a
    with rasterio.open(path) as src:
        from rasterio.warp import transform_bounds

        w_, s_, e_, n_ = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    pad = 0.004  # about 300 m around the 1 km tile: windows inside, across its edge, outside
    windows = windows_from_aoi(
        (w_ - pad, s_ - pad, e_ + pad, n_ + pad), start="2015-07-01", end="2015-09-29", size=24
    )
    ds = Dataset(tmp_path / "ds")
    ds.write_windows(windows)
    source = LocalSource([path], "sentinel2_l2a", bands=["B02", "B03", "B04", "B08"], dates=dates)
    assert [it.datetime.date().isoformat() for it in source.items()] == dates  # none lost
    report = ingest(ds, windows, LayerSpec("s2", "sentinel2_l2a", period="30d"), source, QUIET)
    coverage = {w.name: true_coverage(w, path) for w in windows}
    inside = [n for n, c in coverage.items() if c == 1.0]
    partly = [n for n, c in coverage.items() if 0 < c < 1]
    outside = [n for n, c in coverage.items() if c == 0]
    assert inside and partly and outside
    assert set(report.missing) == set(outside)  # reported missing, nothing written
    assert set(report.done) == set(inside) | set(partly) and not report.failed
    for name in outside:
        assert not ds.layer_done(name, "s2")
        assert "every period is missing" in report.missing[name]
    for name in inside + partly:
        meta = ds.layer_metadata(name, "s2")
        ld = read_layer_arrays(ds, name, "s2")
        # periods [Jul 1, Jul 31), [Jul 31, Aug 30), [Aug 30, Sep 29): the third has no date
        assert [p[0][:10] for p in meta["periods"]] == ["2015-07-01", "2015-07-31", "2015-08-30"]
        assert meta["missing_periods"] == [2]
        assert meta["acquired"][0][:10] == dates[0] and meta["acquired"][1][:10] == dates[1]
        window = ds.window(name)
        for t in (0, 1):
            got = ld.valid[t].mean()
            assert got == pytest.approx(coverage[name], abs=1.5 / window.width), name
            assert meta["valid_fraction"][t] == pytest.approx(got)
        assert meta["valid_fraction"][2] == 0.0
    summary = report.summary()
    assert "periods with no data: 2015-08-30" in summary
    assert f"{len(outside)} missing" in summary and "MISSING" in summary


def test_the_same_file_read_as_l1c_is_refused_then_accepted_and_recorded(two_date_l2a, tmp_path):
    from earthplat.data.sources.level import ProductMismatchError

    path, dates = two_date_l2a
    with pytest.raises(ProductMismatchError) as err:
        LocalSource(
            [path], "sentinel2_l1c", bands=["B02", "B03", "B04", "B08"], dates=dates
        ).items()
    message = str(err.value)
    assert "sentinel2_l2a" in message and "PROCESSING_LEVEL" in message
    assert "--modality sentinel2_l2a" in message and "--allow_substitution" in message
    with rasterio.open(path) as src:
        crs, left, top = src.crs.to_string(), src.bounds.left, src.bounds.top
    c0, r0 = int(left // 10) + 2, int(-top // 10) + 2
    w = Window("in", crs, 10.0, (c0, r0, c0 + 16, r0 + 16), "2015-07-01", "2015-09-29")
    ds = Dataset(tmp_path / "ds")
    ds.write_windows([w])
    source = LocalSource(
        [path],
        "sentinel2_l1c",
        bands=["B02", "B03", "B04", "B08"],
        dates=dates,
        allow_substitution=True,
    )
    ingest(ds, [w], LayerSpec("s2", "sentinel2_l1c", period="30d"), source, QUIET)
    subs = ds.layer_metadata(w, "s2")["substitutions"]
    assert subs and subs[0]["from"] == "sentinel2_l2a" and subs[0]["to"] == "sentinel2_l1c"


def test_mostly_empty_periods_warn_with_a_period_that_fits(two_date_l2a, tmp_path):
    path, dates = two_date_l2a
    with rasterio.open(path) as src:
        crs, left, top = src.crs.to_string(), src.bounds.left, src.bounds.top
    c0, r0 = int(left // 10) + 2, int(-top // 10) + 2
    w = Window("long", crs, 10.0, (c0, r0, c0 + 16, r0 + 16), "2014-09-01", "2016-09-01")
    ds = Dataset(tmp_path / "ds")
    ds.write_windows([w])
    source = LocalSource([path], "sentinel2_l2a", bands=["B02", "B03", "B04", "B08"], dates=dates)
    with pytest.warns(UserWarning, match=r"23 of 25 periods .* hold no data") as record:
        report = ingest(ds, [w], LayerSpec("s2", "sentinel2_l2a"), source, QUIET)  # 30d default
    advice = str(record[0].message)
    assert "--period" in advice and "--max_periods" in advice
    period = advice.split("--period ")[-1].split()[0]
    max_periods = int(advice.split("--max_periods ")[-1].split()[0])
    assert report.advice == advice and "WARNING" in report.summary()
    assert "periods with no data" in report.summary()
    # the advice holds: both dates kept apart, at most half of the periods empty
    fitted = Dataset(tmp_path / "ds2")
    fitted.write_windows([w])
    spec = LayerSpec("s2", "sentinel2_l2a", period=period, max_periods=max_periods)
    again = ingest(fitted, [w], spec, source, QUIET)
    meta = fitted.layer_metadata(w, "s2")
    assert again.advice is None
    kept = [i for i in range(len(meta["periods"])) if i not in meta["missing_periods"]]
    assert len(kept) == 2 and len(meta["missing_periods"]) <= len(meta["periods"]) / 2
