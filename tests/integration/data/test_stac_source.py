"""``StacSource`` against static STAC catalogues describing real files from ../shared/data/real.

The HTTP tests serve a catalogue (plus symlinks to the real rasters) with the range server, so
GDAL reads the COGs through ``/vsicurl/`` exactly as it would from a cloud bucket, and check that
ingesting through STAC gives the very same pixels as ingesting the files with ``LocalSource``.
No test contacts the internet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.warp import transform, transform_bounds
from shapely.geometry import box, mapping

from earthplat.data.dataset import Dataset
from earthplat.data.layer import read_layer_arrays
from earthplat.data.materialize import LayerSpec, materialize
from earthplat.data.sources import LocalSource
from earthplat.data.sources.stac import StacSource
from earthplat.data.window import window_around
from earthplat.errors import DataError
from earthplat.sensors import S2_L1C_ORDER
from tests.helpers.range_server import serve_directory

LANDSAT = "landsat/landsat8_LC80460282016177_B2B3B4_crop512.tif"
S1 = "sen1floods11_spain/Spain_7370579_S1Hand.tif"
S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"
SPAIN = (-0.7589, 38.1058)  # the centre of the Sen1Floods11 chip


@pytest.fixture(scope="module")
def real(shared_data: Path) -> Path:
    return shared_data / "real"


def _footprint(path: Path) -> tuple[dict, list[float]]:
    with rasterio.open(path) as src:
        bbox = list(transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21))
    return mapping(box(*bbox)), bbox


def _item(
    item_id: str,
    path: Path,
    when: str,
    href: str,
    bands: list[dict] | None = None,
    *,
    key: str = "image",
    band_field: str = "eo:bands",
    **properties,
) -> pystac.Item:
    """One STAC item whose asset ``key`` (at ``href``) lists ``bands``."""
    geometry, bbox = _footprint(path)
    item = pystac.Item(
        item_id, geometry, bbox, datetime.fromisoformat(when).replace(tzinfo=UTC), dict(properties)
    )
    extra = {band_field: bands} if bands else {}
    item.add_asset(
        key, pystac.Asset(href, media_type=pystac.MediaType.COG, roles=["data"], extra_fields=extra)
    )
    item.add_asset(
        "thumbnail",
        pystac.Asset(f"{item_id}.png", media_type=pystac.MediaType.PNG, roles=["thumbnail"]),
    )
    return item


def _save(catalog: pystac.Catalog, root: Path) -> Path:
    catalog.normalize_hrefs(str(root))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def _landsat_window(real: Path, *, name: str = "ls8"):
    """64 x 64 px at 150 m around the centre of the file's first 256 x 256 block."""
    with rasterio.open(real / LANDSAT) as src:
        x, y = src.xy(128, 128)
        (lon,), (lat,) = transform(src.crs, "EPSG:4326", [x], [y])
    return window_around(
        lon, lat, name=name, start="2016-06-01", end="2016-07-01", size=64, resolution=150
    )


def _spain_window(name: str = "spain"):
    return window_around(
        *SPAIN, name=name, start="2019-09-10", end="2019-09-25", size=128, resolution=10
    )


LANDSAT_BANDS = [
    {"name": "B2", "common_name": "blue"},
    {"name": "B3", "common_name": "green"},
    {"name": "B4", "common_name": "red"},
]


# --- served over HTTP: STAC ingest == local ingest -------------------------------------------
@pytest.fixture(scope="module")
def served(real: Path, tmp_path_factory):
    """A static catalogue (two collections) served with the range server."""
    root = tmp_path_factory.mktemp("stac_served")
    (root / "data").mkdir()
    for rel in (LANDSAT, S1):
        (root / "data" / Path(rel).name).symlink_to(real / rel)
    catalog = pystac.Catalog("earthplat-test", "real files for StacSource tests")
    for cid, item in (
        (
            "landsat-test",
            _item(
                "LC80460282016177",
                real / LANDSAT,
                "2016-06-25",
                f"../../data/{Path(LANDSAT).name}",
                LANDSAT_BANDS,
                **{"eo:cloud_cover": 3.0},
            ),
        ),
        (
            "s1-test",
            _item(
                "S1_Spain_7370579",
                real / S1,
                "2019-09-17",
                f"../../data/{Path(S1).name}",
                [{"name": "VV"}, {"name": "VH"}],
                band_field="bands",
            ),
        ),  # STAC 1.1 style
    ):
        collection = pystac.Collection(
            cid,
            f"{cid} (test)",
            pystac.Extent(
                pystac.SpatialExtent([item.bbox]),
                pystac.TemporalExtent([[item.datetime, item.datetime]]),
            ),
        )
        collection.add_item(item)
        catalog.add_child(collection)
    _save(catalog, root)
    with serve_directory(root) as (base_url, stats):
        yield base_url, stats


def _ingest_both(tmp_path: Path, window, layer: LayerSpec, stac, local):
    out = []
    for name, source in (("stac", stac), ("local", local)):
        ds = Dataset(tmp_path / name)
        ds.write_windows([window])
        # the layer alone: its context overview reads 25x the window's area on purpose
        meta = materialize(ds, window, layer, source, context=False)
        assert meta["source"]["type"] == name
        out.append(read_layer_arrays(ds, window, layer.name))
    return out


@pytest.mark.slow
def test_landsat_over_http_matches_local_and_uses_ranges(served, real, tmp_path):
    base_url, stats = served
    window = _landsat_window(real)
    stac = StacSource(f"{base_url}/catalog.json", modality="landsat", collections=["landsat-test"])
    items = stac.search(window)
    assert [it.id for it in items] == ["LC80460282016177"]
    item = items[0]
    href = f"{base_url}/data/{Path(LANDSAT).name}"
    assert {b: (a.href, a.band_index) for b, a in item.assets.items()} == {
        "B2": (href, 1),
        "B3": (href, 2),
        "B4": (href, 3),
    }
    assert item.properties["cloud_cover"] == 3.0 and item.properties["source"] == "stac"
    assert item.properties["stac_item"].startswith(base_url)

    local = LocalSource([str(real / LANDSAT)], "landsat")
    a, b = _ingest_both(tmp_path, window, LayerSpec("ls8", "landsat"), stac, local)
    assert a.bands == b.bands == ["B2", "B3", "B4"]
    assert a.data.shape == (1, 3, 64, 64) and a.valid.mean() == 1.0
    assert np.array_equal(a.data, b.data) and np.array_equal(a.valid, b.valid)

    requests, partial, sent = stats.snapshot(f"/data/{Path(LANDSAT).name}")
    size = (real / LANDSAT).stat().st_size
    assert requests >= partial > 0, "GDAL should have read the COG with range requests"
    assert 0 < sent < size / 2, f"read {sent} of {size} bytes for a 64 x 64 px window"


@pytest.mark.slow
def test_sentinel1_over_http_matches_local(served, real, tmp_path):
    base_url, _ = served
    window = _spain_window()
    stac = StacSource(f"{base_url}/catalog.json", modality="sentinel1")
    (item,) = stac.search(window)  # the Landsat item is far away and has no SAR band
    assert {b: a.band_index for b, a in item.assets.items()} == {"VV": 1, "VH": 2}
    local = LocalSource([str(real / S1)], "sentinel1", datetime="2019-09-17")
    a, b = _ingest_both(tmp_path, window, LayerSpec("s1", "sentinel1"), stac, local)
    assert a.bands == b.bands == ["VV", "VH"]
    assert a.valid.mean() > 0.99
    assert np.array_equal(a.data, b.data, equal_nan=True) and np.array_equal(a.valid, b.valid)


# --- local static catalogues: filters, mapping, errors ---------------------------------------
def test_missing_band_names_band_and_assets(real, tmp_path):
    catalog = pystac.Catalog("ls", "one Landsat item")
    catalog.add_item(_item("ls8", real / LANDSAT, "2016-06-25", str(real / LANDSAT), LANDSAT_BANDS))
    url = str(_save(catalog, tmp_path / "cat"))
    window = _landsat_window(real)
    with pytest.raises(
        DataError,
        match=r"ls8 has no asset for band\(s\) B5; its assets are "
        r"image, thumbnail",
    ):
        StacSource(url, modality="landsat", bands=["B2", "nir08"]).search(window)
    # without the up-front check, materialisation refuses the band too
    with pytest.raises(DataError, match="B5"):
        materialize(
            Dataset(tmp_path / "ds"),
            window,
            LayerSpec("ls8", "landsat", ["B2", "B5"]),
            StacSource(url, modality="landsat"),
        )


def test_max_cloud_cover_filters_items(real, tmp_path):
    catalog = pystac.Catalog("clouds", "two acquisitions, one cloudy")
    for item_id, cloud in (("clear", 5.0), ("cloudy", 60.0)):
        catalog.add_item(
            _item(
                item_id,
                real / LANDSAT,
                "2016-06-25",
                str(real / LANDSAT),
                LANDSAT_BANDS,
                **{"eo:cloud_cover": cloud},
            )
        )
    url = str(_save(catalog, tmp_path / "cat"))
    window = _landsat_window(real)
    by_dir = StacSource(str(tmp_path / "cat"), modality="landsat")  # the directory works too
    assert [it.id for it in by_dir.search(window)] == [
        "clear",
        "cloudy",
    ]
    kept = StacSource(url, modality="landsat", max_cloud_cover=20).search(window)
    assert [(it.id, it.properties["cloud_cover"]) for it in kept] == [("clear", 5.0)]
    outside = window_around(10.0, 50.0, name="elsewhere", start="2016-06-01", end="2016-07-01")
    assert StacSource(url, modality="landsat").search(outside) == []


def test_s2_offset_harmonisation_follows_processing_baseline(real, tmp_path):
    s2_bands = [
        {"name": b}
        for b in ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
    ]
    catalog = pystac.Catalog("s2", "same file, two processing baselines")
    for item_id, baseline in (("new", "04.00"), ("old", "02.14")):
        item = _item(
            item_id,
            real / S2,
            "2019-09-18",
            str(real / S2),
            s2_bands,
            **{"s2:processing_baseline": baseline, "eo:cloud_cover": 1.0},
        )
        item.add_asset("SCL", pystac.Asset(str(real / S2), media_type=pystac.MediaType.COG))
        catalog.add_item(item)
    url = str(_save(catalog, tmp_path / "cat"))
    window = _spain_window()
    new, old = StacSource(url, modality="sentinel2_l2a", quality_asset="scl").search(window)
    assert (new.id, old.id) == ("new", "old")
    # B10 (cirrus) is not an L2A band: skipped, the later bands keep their file positions
    assert list(new.assets) == [b for b in S2_L1C_ORDER if b != "B10"]
    assert new.assets["B8A"].band_index == 9 and new.assets["B11"].band_index == 12
    assert {a.offset for a in new.assets.values()} == {-1000.0}
    assert new.properties["harmonized_offset"] == -1000
    assert new.properties["processing_baseline"] == "04.00"
    assert {a.offset for a in old.assets.values()} == {0.0}
    assert "harmonized_offset" not in old.properties
    assert new.quality is not None and new.quality.kind == "scl"
    off = StacSource(url, modality="sentinel2_l2a", harmonize_s2=False).search(window)
    assert {a.offset for it in off for a in it.assets.values()} == {0.0}


def test_asset_key_beats_preview_and_jp2_twins(real):
    item = _item(
        "es",
        real / S2,
        "2023-06-01",
        "https://example.invalid/red.tif",
        key="red",
        **{"s2:processing_baseline": "05.09"},
    )
    item.add_asset(
        "red-jp2",
        pystac.Asset(
            "https://example.invalid/red.jp2",
            media_type=pystac.MediaType.JPEG2000,
            extra_fields={"eo:bands": [{"name": "red"}]},
        ),
    )
    item.add_asset(
        "visual",
        pystac.Asset(
            "https://example.invalid/tci.tif",
            media_type=pystac.MediaType.COG,
            roles=["visual"],
            extra_fields={"eo:bands": [{"name": "red"}, {"name": "green"}, {"name": "blue"}]},
        ),
    )
    item.add_asset(
        "granule_metadata",
        pystac.Asset("https://example.invalid/m.xml", media_type=pystac.MediaType.XML),
    )
    got = StacSource.earth_search_s2().to_item(item)
    assert got.assets == {"B04": got.assets["B04"]}
    assert got.assets["B04"].href == "https://example.invalid/red.tif"
    assert got.assets["B04"].offset == -1000.0


def test_item_collection_with_relative_hrefs(real, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ls.tif").symlink_to(real / LANDSAT)
    item = _item("ls8", real / LANDSAT, "2016-06-25", "data/ls.tif", LANDSAT_BANDS)
    path = tmp_path / "items.json"
    path.write_text(json.dumps(pystac.ItemCollection([item]).to_dict()))
    (got,) = StacSource(str(path), modality="landsat").search(_landsat_window(real))
    assert got.assets["B3"].href == str(tmp_path / "data" / "ls.tif")
    assert got.assets["B3"].band_index == 2


def test_unreadable_and_empty_catalogues(tmp_path):
    window = _spain_window()
    with pytest.raises(DataError, match="cannot read the STAC catalogue"):
        StacSource(str(tmp_path / "missing.json"), modality="s1").search(window)
    with pytest.raises(DataError, match="cannot open the STAC API"):
        StacSource("http://127.0.0.1:1/api", modality="s1").search(window)
    url = _save(pystac.Catalog("empty", "no items"), tmp_path / "empty")
    with pytest.raises(DataError, match="holds no items"):
        StacSource(str(url), modality="s1").search(window)


def test_api_search_parameters(real, monkeypatch):
    """The API path, with ``Client.open`` replaced (no network)."""
    import pystac_client

    calls = {}
    found = [
        _item("s1", real / S1, "2019-09-17", "https://example.invalid/vv.tif", key="vv"),
        _item("late", real / S1, "2019-09-25", "https://example.invalid/vv.tif", key="vv"),
    ]

    class FakeClient:
        def conforms_to(self, _):
            return True

        def search(self, **kwargs):
            calls["search"] = kwargs
            return type("Search", (), {"items": lambda self: iter(found)})()

    def fake_open(url, **kwargs):
        calls["open"] = (url, kwargs)
        return FakeClient()

    monkeypatch.setattr(pystac_client.Client, "open", staticmethod(fake_open))
    sign = lambda item: item  # noqa: E731 - stands in for planetary_computer.sign_inplace
    source = StacSource.planetary_computer_s1_rtc(modifier=sign, max_cloud_cover=10)
    window = _spain_window()
    (item,) = source.search(window)  # "late" starts at the window's (exclusive) end
    assert item.assets["VV"].to_db and "VH" not in item.assets
    url, open_kwargs = calls["open"]
    assert url == "https://planetarycomputer.microsoft.com/api/stac/v1"
    assert open_kwargs["modifier"] is sign
    search = calls["search"]
    assert search["collections"] == ["sentinel-1-rtc"] and search["max_items"] == 500
    assert search["datetime"] == [window.start, window.end]
    assert search["intersects"]["type"] == "Polygon"
    assert search["query"] == {"eo:cloud_cover": {"lte": 10}}


def test_presets_and_describe():
    presets = {
        "es_s2": StacSource.earth_search_s2(max_cloud_cover=30),
        "es_ls": StacSource.earth_search_landsat(),
        "pc_s2": StacSource.planetary_computer_s2(),
        "pc_s1": StacSource.planetary_computer_s1_rtc(),
        "pc_ls": StacSource.planetary_computer_landsat(),
    }
    assert presets["es_s2"].asset_bands["nir08"] == "B8A"
    assert presets["es_s2"].quality_asset == "scl" and presets["pc_s2"].quality_asset == "SCL"
    assert presets["pc_s2"].asset_bands["B8A"] == "B8A"
    assert presets["pc_s1"].to_db and presets["pc_s1"].modality == "sentinel1"
    assert presets["pc_ls"].asset_bands["lwir11"] == "B10"
    for source in presets.values():
        d = json.loads(json.dumps(source.describe()))
        assert d["type"] == "stac" and d["url"].startswith("https://")
    assert presets["es_s2"].describe()["filters"]["max_cloud_cover"] == 30
    assert presets["es_ls"].describe()["collections"] == ["landsat-c2-l2"]
    with pytest.raises(DataError, match="no band 'B99'"):
        StacSource("x.json", modality="s2", asset_bands={"foo": "B99"})
