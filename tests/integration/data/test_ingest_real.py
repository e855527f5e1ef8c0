"""Ingest real satellite data from ../shared/data/real into UTM windows."""

import numpy as np
import pytest
from rasterio.warp import transform

from earthplat.data.dataset import Dataset
from earthplat.data.ingest import IngestConfig, ingest
from earthplat.data.layer import read_layer, read_layer_arrays
from earthplat.data.materialize import LayerSpec
from earthplat.data.sample import load_sample
from earthplat.data.sources import LocalSource
from earthplat.data.window import window_around

pytestmark = pytest.mark.slow
QUIET = IngestConfig(progress=False)


@pytest.fixture(scope="module")
def real(shared_data):
    return shared_data / "real"


@pytest.fixture(scope="module")
def floods(real, tmp_path_factory):
    """The Sen1Floods11 chip (EPSG:4326) ingested into one UTM window."""
    d = real / "sen1floods11_spain"
    ds = Dataset(tmp_path_factory.mktemp("floods"))
    w = window_around(
        -0.7589, 38.1058, name="spain", start="2019-09-10", end="2019-09-25", size=320
    )
    ds.write_windows([w])
    for layer, source in (
        (
            LayerSpec("s1", "sentinel1", period="15d"),
            LocalSource([str(d / "Spain_7370579_S1Hand.tif")], "sentinel1", datetime="2019-09-17"),
        ),
        (
            LayerSpec("s2", "sentinel2_l1c", period="15d"),
            LocalSource(
                [str(d / "Spain_7370579_S2Hand.tif")], "sentinel2_l1c", datetime="2019-09-18"
            ),
        ),
        (
            LayerSpec("label", "label"),
            LocalSource([str(d / "Spain_7370579_LabelHand.tif")], "label", nodata=-1),
        ),
    ):
        ingest(ds, [w], layer, source, QUIET)
    return ds, w


def _iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def test_flood_label_lines_up_with_low_vv_backscatter(floods):
    ds, w = floods
    assert w.crs == "EPSG:32630"  # UTM zone 30 N, reprojected from EPSG:4326
    s1, label = read_layer_arrays(ds, w, "s1"), read_layer_arrays(ds, w, "label")
    assert s1.data.shape == (1, 2, 320, 320) and s1.bands == ["VV", "VH"]
    vv, lab = s1.data[0, 0], label.data[0, 0]
    ok = s1.valid[0] & label.valid[0]
    assert ok.mean() > 0.99
    water, land = (lab == 1) & ok, (lab == 0) & ok
    assert water.sum() > 10_000 and land.sum() > 10_000
    assert vv[water].mean() < -14.0 < -11.0 < vv[land].mean()
    # pixel alignment: agreement of a VV threshold with the label peaks at zero shift
    ious = {dx: _iou(np.roll(vv < -15, dx, axis=1) & ok, water) for dx in (-4, -2, 0, 2, 4)}
    assert max(ious, key=ious.get) == 0
    assert ious[0] > max(ious[-4], ious[4]) + 0.04
    dys = {dy: _iou(np.roll(vv < -15, dy, axis=0) & ok, water) for dy in (-4, 0, 4)}
    assert max(dys, key=dys.get) == 0


def test_flood_layers_as_xarray_and_sample(floods):
    ds, w = floods
    da = read_layer(ds, w, "s2")
    assert da.dims == ("time", "band", "y", "x") and da.shape == (1, 13, 320, 320)
    assert da.rio.crs.to_epsg() == 32630
    assert list(da.band.values[:4]) == ["B01", "B02", "B03", "B04"]
    assert da.rio.transform() == w.transform
    sample = load_sample(ds, w)
    assert set(sample.modalities) == {"sentinel1", "sentinel2_l1c", "label"}
    s2 = sample.modalities["sentinel2_l1c"]
    assert s2.data.dtype == np.float32 and np.isfinite(s2.data).all()
    assert -1.0 < float(np.median(s2.data)) < 2.0  # normalised around [0, 1]
    assert s2.timestamps.tolist() == [[10, 8, 2019]]


def _slovenia_window(real, size=64, **kw):
    lon, lat = transform("EPSG:32633", "EPSG:4326", [465680.8], [5079749.8])
    return window_around(lon[0], lat[0], name="slovenia", size=size, **kw)


def test_slovenia_stack_composites_with_cloud_mask(real, tmp_path):
    d = real / "s2_slovenia_eolearn"
    ds = Dataset(tmp_path)
    w = _slovenia_window(real, start="2015-07-01", end="2015-09-29")
    ds.write_windows([w])
    source = LocalSource(
        [str(d / "s2_l1c_5dates_13bands.tif")],
        "sentinel2_l1c",
        quality=str(d / "cloudmask_68dates.tif"),
    )
    assert len(source.items()) == 5
    ingest(
        ds,
        [w],
        LayerSpec("s2", "sentinel2_l1c", period="30d", method="least_cloudy"),
        source,
        QUIET,
    )
    meta = ds.layer_metadata(w, "s2")
    assert meta["shape"] == [3, 13, 64, 64]
    assert [p[0][:10] for p in meta["periods"]] == ["2015-07-01", "2015-07-31", "2015-08-30"]
    # every scene is recorded per period; prepare.json keeps the search result
    assert sum(len(p) for p in meta["items"]) <= 5 and meta["prepared_items"]
    ld = read_layer_arrays(ds, w, "s2")
    for t in range(3):
        stored_invalid = ld.data[t][:, ~ld.valid[t]]
        assert (stored_invalid == 0).all()  # nodata where masked, and masked is recorded
        assert (ld.data[t][:, ld.valid[t]] > 0).all()  # valid pixels never read as nodata
    # static maps of the same grid
    for name, modality, path in (("dem", "dem", "dem.tif"), ("lulc", "label", "lulc.tif")):
        ingest(
            ds,
            [w],
            LayerSpec(name, modality),
            LocalSource([str(d / path)], modality, nodata=0 if name == "lulc" else None),
            QUIET,
        )
    dem = read_layer_arrays(ds, w, "dem")
    assert dem.data.shape == (1, 1, 64, 64) and 600 < dem.data[dem.valid[:, None]].mean() < 850
    lulc = read_layer_arrays(ds, w, "lulc")
    assert set(np.unique(lulc.data[0, 0][lulc.valid[0]])) <= {1, 2, 3, 4, 8}


def test_eurosat_patches_each_in_their_own_utm_zone(real, tmp_path):
    from earthplat.eval.recipes import ingest_eurosat

    ds, windows, report = ingest_eurosat(
        real / "eurosat_ms_subset", tmp_path, size=48, limit_per_class=3
    )
    assert len(windows) == 30  # 3 patches x 10 classes
    zones = {w.crs for w in windows}
    assert len(zones) >= 3
    assert sum(w.crs == f"EPSG:{w.properties['epsg']}" for w in windows) >= 0.9 * len(windows)
    assert not report.failed and len(report.done) == len(windows)
    ndvi = {}
    for w in windows:
        ld = read_layer_arrays(ds, w, "s2")
        assert ld.valid.mean() > 0.95
        red, nir = ld.data[0, 3].astype(float), ld.data[0, 7].astype(float)
        ndvi.setdefault(int(w.properties["class_id"]), []).append(
            float(((nir - red) / (nir + red + 1e-6))[ld.valid[0]].mean())
        )
    forest, sea = np.mean(ndvi[1]), np.mean(ndvi[9])
    assert forest > 0.5 and sea < 0.0
    # re-running resumes: nothing is redone
    _, _, again = ingest_eurosat(real / "eurosat_ms_subset", tmp_path, size=48, limit_per_class=3)
    assert len(again.skipped) == len(windows) and not again.done


def test_landsat_crop(real, tmp_path):
    path = real / "landsat" / "landsat8_LC80460282016177_B2B3B4_crop512.tif"
    ds = Dataset(tmp_path)
    import rasterio

    with rasterio.open(path) as src:
        cx, cy = (src.bounds.left + src.bounds.right) / 2, (src.bounds.bottom + src.bounds.top) / 2
    lon, lat = transform("EPSG:32610", "EPSG:4326", [cx], [cy])
    w = window_around(
        lon[0], lat[0], name="wa", size=128, resolution=30.0, start="2016-06-01", end="2016-07-01"
    )
    ds.write_windows([w])
    ingest(
        ds,
        [w],
        LayerSpec("landsat", "landsat", period="30d"),
        LocalSource([str(path)], "landsat"),
        QUIET,
    )
    ld = read_layer_arrays(ds, w, "landsat")
    assert ld.bands == ["B2", "B3", "B4"] and ld.data.shape == (1, 3, 128, 128)
    assert ld.valid.mean() > 0.99
    assert 5_000 < float(ld.data[0][:, ld.valid[0]].mean()) < 30_000  # Level-1 DN
