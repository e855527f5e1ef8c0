import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from earthplat.errors import SensorError
from earthplat.sensors import (
    MODALITIES,
    S2_L1C_ORDER,
    Composite,
    check_modality,
    detect_product,
    get_modality,
    modalities,
    normalize,
    s2_needs_offset_removal,
)


def test_sentinel2_bands_and_band_sets():
    l1c, l2a = get_modality("sentinel2_l1c"), get_modality("sentinel2_l2a")
    assert l1c.band_names == S2_L1C_ORDER and len(l1c.bands) == 13
    assert len(l2a.bands) == 12 and "B10" not in l2a.band_names
    assert l2a.band_sets == (
        ("B02", "B03", "B04", "B08"),
        ("B05", "B06", "B07", "B8A", "B11", "B12"),
        ("B01", "B09"),
    )
    gsd = {b.name: b.gsd_m for b in l1c.bands}
    assert {n for n, g in gsd.items() if g == 10} == {"B02", "B03", "B04", "B08"}
    assert {n for n, g in gsd.items() if g == 60} == {"B01", "B09", "B10"}
    assert l2a.band("red").name == "B04" and l2a.band("B8").name == "B08"
    assert l2a.band("nir08").name == "B8A" and l2a.band("rededge1").name == "B05"


def test_landsat_and_sentinel1():
    ls = get_modality("landsat")
    assert len(ls.bands) == 11 and len(ls.band_sets) == 2
    assert sum(len(s) for s in ls.band_sets) == 11
    s1 = get_modality("s1")
    assert s1.band_names == ("VV", "VH") and s1.units.endswith("dB")


@pytest.mark.parametrize("name", list(MODALITIES))
def test_every_modality_is_consistent(name):
    m = MODALITIES[name]
    in_sets = [b for s in m.band_sets for b in s]
    assert sorted(in_sets) == sorted(m.band_names), "band sets partition the bands"
    assert all(b.std > 0 for b in m.bands)
    for c in m.composites:
        for expr in c.bands:
            for part in expr.split("-"):
                m.band(part)
    if m.decode_only:
        assert not m.multitemporal


def test_normalisation_maps_two_sigma_to_unit_interval():
    m = get_modality("sentinel2_l2a")
    means, stds = m.stats(("B04", "B08"))
    x = np.array(
        [[m_ - 2 * s for m_, s in zip(means, stds)], [m_ + 2 * s for m_, s in zip(means, stds)]],
        dtype=np.float32,
    )[..., None, None]
    out = normalize(x, m, ("B04", "B08"))  # [2, C, 1, 1]
    assert np.allclose(out[0], 0.0, atol=1e-6) and np.allclose(out[1], 1.0, atol=1e-6)
    t = normalize(torch.from_numpy(x), "sentinel2_l2a", ("B04", "B08"))
    assert torch.allclose(t, torch.from_numpy(out))


def test_s2_baseline_offset_rule():
    from datetime import date

    assert s2_needs_offset_removal("04.00", None)
    assert not s2_needs_offset_removal("02.14", date(2023, 1, 1))
    assert s2_needs_offset_removal(None, date(2022, 2, 1))
    assert not s2_needs_offset_removal(None, date(2021, 12, 31))


def test_unknown_names_say_what_exists():
    with pytest.raises(SensorError, match="known: sentinel2_l2a"):
        get_modality("modis")
    with pytest.raises(SensorError, match="its bands are VV, VH"):
        get_modality("sentinel1").band("HH")


# --- NAIP --------------------------------------------------------------------------------------
NAIP_TILES = "real/chesapeake_naip_geobench"


def test_naip_bands_and_lookups():
    naip = get_modality("naip")
    assert naip.band_names == ("R", "G", "B", "NIR") and naip.band_sets == (naip.band_names,)
    assert [b.common_name for b in naip.bands] == ["red", "green", "blue", "nir"]
    assert all(b.gsd_m == 1.0 for b in naip.bands) and naip.multitemporal
    # the real tiles describe their bands as Red, Green, Blue, NIR; unnamed files are B1..B4
    assert naip.canonical(["Red", "Green", "Blue", "NIR"]) == naip.band_names
    assert naip.canonical(["B1", "B2", "B3", "B4"]) == naip.band_names
    assert naip.canonical(["band4", "n", "nir"]) == ("NIR",) * 3
    assert naip.composite("false_color").bands == ("NIR", "R", "G")
    assert naip.composite("true_color").ranges == ((0, 255),) * 3


def test_naip_nodata_never_hides_a_valid_zero():
    from earthplat.data.materialize import _to_storage

    naip = get_modality("naip")
    assert naip.dtype == "uint16" and not 0 <= naip.nodata <= 255
    values = np.array([[[0.0, 255.0]]] * 4)  # [C, H, W]: NIR 0 over water, saturated 255
    stored = _to_storage(values, np.ones((1, 2), dtype=bool), naip)
    assert stored.tolist() == values.tolist()  # 8-bit values stored unchanged, 0 stays 0
    assert (_to_storage(values, np.zeros((1, 2), dtype=bool), naip) == naip.nodata).all()


def test_naip_statistics_are_those_of_the_real_tiles(shared_data):
    from earthplat.data.band_stats import band_stats

    tiles = sorted((shared_data / NAIP_TILES).glob("*_naip_rgbn.tif"))
    assert len(tiles) == 3
    stats = band_stats([str(p) for p in tiles])
    naip = get_modality("naip")
    assert [naip.band(s.name).name for s in stats] == list(naip.band_names)
    for s, b in zip(stats, naip.bands):
        assert s.count == 3 * 256 * 256
        assert (b.mean, b.std) == pytest.approx((s.mean, s.std), abs=1e-4)


# --- registry checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODALITIES))
def test_every_modality_passes_the_registry_check(name):
    check_modality(MODALITIES[name])


def test_check_modality_names_each_problem():
    good = get_modality("naip")
    clash = replace(good, bands=(*good.bands[:3], replace(good.bands[3], aliases=("red",))))
    with pytest.raises(SensorError, match="'red' would name both band R and band NIR"):
        check_modality(clash)
    with pytest.raises(SensorError, match="must hold every band"):
        check_modality(replace(good, band_sets=(("R", "G"),)))
    with pytest.raises(SensorError, match="composite x: unknown bands SWIR"):
        check_modality(
            replace(good, composites=(Composite("x", ("SWIR", "R", "G"), ((0, 1),) * 3),))
        )
    with pytest.raises(SensorError, match="nodata 70000 does not fit dtype uint16"):
        check_modality(replace(good, nodata=70000))


def test_registry_lists_and_maps_the_same_modalities():
    names = [m.name for m in modalities()]
    assert names == list(MODALITIES) and len(MODALITIES) == len(names)
    assert "naip" in MODALITIES and MODALITIES["naip"] is get_modality("naip")
    with pytest.raises(KeyError):
        MODALITIES["modis"]
    with pytest.raises(TypeError):
        MODALITIES["x"] = get_modality("naip")  # read-only: register_modality adds sensors


def test_importing_the_registry_stays_cheap():
    code = (
        "import sys, earthplat.sensors as s; s.get_modality('naip'); s.modalities(); "
        "print(' '.join(m for m in ('numpy', 'yaml', 'torch', 'rasterio') if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "EARTHPLAT_SENSORS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


# --- product levels ----------------------------------------------------------------------------
def test_families_and_product_ids():
    l1c, l2a = get_modality("sentinel2_l1c"), get_modality("sentinel2_l2a")
    assert l1c.family == l2a.family == "sentinel2"
    assert {"L1C", "MSIL1C", "S2MSI1C", "Level-1C", "sentinel-2-l1c"} <= set(l1c.product_ids)
    assert {"L2A", "MSIL2A", "S2MSI2A", "Level-2A", "sentinel-2-l2a"} <= set(l2a.product_ids)
    assert get_modality("naip").family == "naip" and get_modality("s1").family == "sentinel1"
    assert get_modality("worldcover").family == ""


L1C, L2A = "sentinel2_l1c", "sentinel2_l2a"


@pytest.mark.parametrize(
    ("metadata", "level", "evidence"),
    [
        # file names: token boundaries
        ({"name": "S2A_MSIL2A_20200101T101021_N0213.tif"}, L2A, "file name S2A_MSIL2A_2020"),
        ({"name": "/data/T33_L2A.tif"}, L2A, "file name T33_L2A.tif"),
        ({"name": "s2_l1c_5dates_13bands.tif"}, L1C, "file name s2_l1c"),
        ({"name": "XL2AB.tif"}, None, ""),
        ({"name": "/data/L2A/scene.tif"}, None, ""),  # only the last path component
        ({"name": "level_2a.tif"}, L2A, "file name level_2a.tif"),  # Level-2A's tokens in a row
        # STAC
        ({"collection": "sentinel-2-l2a"}, L2A, "STAC collection sentinel-2-l2a"),
        ({"collection": "sentinel-2-c1-l2a"}, L2A, "STAC collection"),
        ({"properties": {"s2:product_type": "S2MSI1C"}}, L1C, "STAC property s2:product_type"),
        ({"properties": {"processing:level": "L2A"}}, L2A, "STAC property processing:level=L2A"),
        ({"properties": {"eo:cloud_cover": 3.0, "title": "L1C"}}, None, ""),
        # tags: level keys, then any value
        ({"tags": {"PROCESSING_LEVEL": "Level-2A"}}, L2A, "tag PROCESSING_LEVEL=Level-2A"),
        ({"tags": {"PRODUCT_TYPE": "S2MSI1C"}}, L1C, "tag PRODUCT_TYPE=S2MSI1C"),
        ({"tags": {"SENSOR": "Sentinel-2 L1C (TOA)"}}, L1C, "tag SENSOR=Sentinel-2 L1C (TOA)"),
        ({"tags": {"AREA_OR_POINT": "Area"}}, None, ""),
        # band descriptions
        ({"descriptions": ["B02", "B03", "SCL"]}, L2A, "band SCL (only in sentinel2_l2a)"),
        ({"descriptions": ["2015-07-11_B10"]}, L1C, "band 2015-07-11_B10 (only in"),
        ({"descriptions": ["B02", "B03", None]}, None, ""),
        ({"descriptions": [None] * 13}, None, ""),  # a count of 13 is no evidence
    ],
)
def test_detect_product(metadata, level, evidence):
    found, why = detect_product("sentinel2", **metadata)
    assert found == level
    assert why.startswith(evidence) if evidence else why == ""


def test_stronger_evidence_wins_and_conflicts_are_reported():
    # a tag outranks the file name, the STAC collection outranks the tags
    assert detect_product("sentinel2", tags={"LEVEL": "L2A"}, name="x_L1C.tif")[0] == L2A
    assert detect_product("sentinel2", collection="sentinel-2-l1c", tags={"LEVEL": "L2A"}) == (
        L1C,
        "STAC collection sentinel-2-l1c",
    )
    # two levels at the same strength: no answer, and the evidence names both
    found, why = detect_product(
        "sentinel2", tags={"PROCESSING_LEVEL": "Level-2A", "PRODUCT_TYPE": "S2MSI1C"}
    )
    assert found is None and why.startswith("conflicting product levels")
    assert "Level-2A says sentinel2_l2a" in why and "S2MSI1C says sentinel2_l1c" in why
    # a conflict is not settled by weaker evidence
    found, why = detect_product("sentinel2", descriptions=["B10", "SCL"], name="a_L2A.tif")
    assert found is None and "B10" in why and "SCL" in why


def test_detect_product_names_products_without_a_modality():
    found, why = detect_product("landsat", name="LC08_L2SP_044034_20200101_02_T1.tif")
    assert found is None and "Level-2 surface reflectance" in why and "no registered" in why
    assert detect_product("landsat", name="LC08_L1TP_044034_20200101_02_T1.tif")[0] == "landsat"
    assert detect_product("sentinel1", name="S1A_IW_GRDH_1SDV_20190917.tif")[0] == "sentinel1"
    assert detect_product("sentinel1", name="S1A_IW_SLC__1SDV_20190917.tif")[0] is None


def test_detect_product_families():
    # a modality stands for its family; maps have none; typos are errors
    assert detect_product(L1C, tags={"LEVEL": "Level-2A"})[0] == L2A
    assert detect_product("s2", name="a_L1C.tif")[0] == L1C
    assert detect_product("worldcover", name="a_L2A.tif") == (None, "")
    assert detect_product("naip", name="m_3707763_se_18_060_20180825.tif") == (None, "")
    assert detect_product("naip", collection="naip")[0] == "naip"
    with pytest.raises(SensorError, match="unknown sensor family 'sentinel-2'; families: "):
        detect_product("sentinel-2")


def _write_tif(path, *, count=2, tags=None, descriptions=None):
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=8,
        height=8,
        count=count,
        dtype="uint16",
        crs="EPSG:32633",
        transform=from_origin(500000, 5200000, 10, 10),
    ) as dst:
        dst.write(np.full((count, 8, 8), 1200, dtype=np.uint16))
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
        dst.update_tags(**(tags or {}))
    return path


def _file_metadata(path):
    import rasterio

    with rasterio.open(path) as src:
        return dict(tags=src.tags(), descriptions=list(src.descriptions), name=str(path))


def test_detect_product_on_generated_geotiffs(tmp_path):
    cases = {
        "plain.tif": ({}, None, (None, "")),
        "tagged.tif": ({"PROCESSING_LEVEL": "Level-2A"}, None, L2A),
        "S2B_MSIL1C_20220101.tif": ({}, None, L1C),
        "scl.tif": ({}, ["B04", "SCL"], L2A),
        "cirrus.tif": ({}, ["B04", "B10"], L1C),
        "both_L1C.tif": ({"PRODUCT_TYPE": "S2MSI2A"}, None, L2A),  # the tag outranks the name
    }
    for name, (tags, descriptions, expected) in cases.items():
        path = _write_tif(tmp_path / name, tags=tags, descriptions=descriptions)
        found = detect_product("sentinel2", **_file_metadata(path))
        assert (found if isinstance(expected, tuple) else found[0]) == expected, name


def test_detect_product_on_the_real_sentinel2_files(shared_data):
    real = shared_data / "real"
    # Sen1Floods11 S2Hand names its 13 bands B1..B12 (with B10): L1C, from the cirrus band
    s2hand = _file_metadata(real / "sen1floods11_spain" / "Spain_7370579_S2Hand.tif")
    assert detect_product("sentinel2", **s2hand) == (L1C, "band B10 (only in sentinel2_l1c)")
    # EuroSAT patches are L1C too, but nothing in them says so: no tags, no descriptions
    eurosat = sorted((real / "eurosat_ms_subset" / "Forest").glob("*.tif"))[0]
    assert detect_product("sentinel2", **_file_metadata(eurosat)) == (None, "")
    # the eo-learn stack says it in a tag (and in its file name and band descriptions)
    stack = _file_metadata(real / "s2_slovenia_eolearn" / "s2_l1c_5dates_13bands.tif")
    assert detect_product("sentinel2", **stack) == (L1C, "tag SENSOR=Sentinel-2 L1C (TOA)")
