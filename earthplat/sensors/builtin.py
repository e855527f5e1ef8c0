"""The built-in modalities: Sentinel-2 L1C/L2A, Sentinel-1, Landsat 8/9, NAIP and the decode-only
maps, with the facts their documentation and OlmoEarth give (see ``earthplat.sensors``)."""

from __future__ import annotations

from datetime import date

from earthplat.sensors.types import Band, Composite, Modality


def _b(name, common, wl, gsd, mean, std, *aliases) -> Band:
    return Band(name, common, wl, gsd, mean, std, tuple(aliases))


# --- Sentinel-2 MSI ---------------------------------------------------------------------------
# Statistics: OlmoEarth's computed.json (L2A, harmonised DN), at full precision like Sentinel-1's
# and Landsat's, so that a published checkpoint sees the reference normaliser's values to the
# last digit (tests/integration/test_olmoearth_parity.py). L1C reuses them (TOA is somewhat
# brighter than BOA, but the mapping only has to land values near [0, 1]); B10 (cirrus, L1C only)
# has no published statistic: 25 +/- 50 DN is our estimate from typical cirrus-band TOA values.
_S2 = {
    "B01": ("coastal", 0.443, 60, 1115.8494388252218, 1955.6991794280914, "coastal", "B1", "b01"),
    "B02": ("blue", 0.490, 10, 1188.9412572078477, 1859.1923971769581, "blue", "B2", "b02"),
    "B03": ("green", 0.560, 10, 1407.7739105458452, 1727.7387413631088, "green", "B3", "b03"),
    "B04": ("red", 0.665, 10, 1513.0573882432757, 1740.7757298757895, "red", "B4", "b04"),
    "B05": (
        "rededge071",
        0.705,
        20,
        1890.9893042634167,
        1754.7320388511766,
        "rededge1",
        "rededge",
        "B5",
        "b05",
    ),
    "B06": (
        "rededge075",
        0.740,
        20,
        2483.7812315422448,
        1622.1172720635755,
        "rededge2",
        "B6",
        "b06",
    ),
    "B07": (
        "rededge078",
        0.783,
        20,
        2722.728248756412,
        1621.8226170190276,
        "rededge3",
        "B7",
        "b07",
    ),
    "B08": ("nir", 0.842, 10, 2755.481305028308, 1612.2565699990187, "nir", "B8", "b08"),
    "B8A": ("nir08", 0.865, 20, 2885.570263047681, 1611.3587521042082, "nir08", "B08A", "b8a"),
    "B09": ("nir09", 0.945, 60, 3269.812554170875, 2651.088425085525, "nir09", "B9", "b09"),
    "B10": ("cirrus", 1.375, 60, 25.0, 50.0, "cirrus", "b10"),
    "B11": ("swir16", 1.610, 20, 2562.852607796968, 1441.5471830655151, "swir16", "b11"),
    "B12": ("swir22", 2.190, 20, 1914.1383249044113, 1328.8914382756407, "swir22", "b12"),
}
S2_L1C_ORDER = (
    "B01",
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B8A",
    "B09",
    "B10",
    "B11",
    "B12",
)
"""The 13 L1C bands in the order ESA (and EuroSAT, Sen1Floods11) store them."""
S2_L2A_ORDER = tuple(b for b in S2_L1C_ORDER if b != "B10")
S2_BAND_SETS = (
    ("B02", "B03", "B04", "B08"),
    ("B05", "B06", "B07", "B8A", "B11", "B12"),
    ("B01", "B09"),
)

S2_L2A_BASELINE_OFFSET = 1000
"""From processing baseline 04.00 (25 Jan 2022) S2 DN carry a +1000 radiometric offset
(BOA_ADD_OFFSET = -1000 for L2A, RADIO_ADD_OFFSET for L1C). Subtracting it harmonises new scenes
with older ones: reflectance = (DN - 1000) / 10000."""
S2_OFFSET_FROM = date(2022, 1, 25)

_S2_COMPOSITES = (
    Composite("true_color", ("B04", "B03", "B02"), ((0, 3000),) * 3, "natural colour"),
    Composite(
        "false_color", ("B08", "B04", "B03"), ((0, 5000), (0, 3000), (0, 3000)), "vegetation red"
    ),
    Composite(
        "swir",
        ("B12", "B8A", "B04"),
        ((0, 5000), (0, 5000), (0, 3000)),
        "short-wave infrared: moisture, burn scars",
    ),
)


def s2_needs_offset_removal(processing_baseline: str | None, acquired: date | None) -> bool:
    """Whether DN of a scene carry the baseline-04.00 offset."""
    if processing_baseline:
        try:
            return float(processing_baseline) >= 4.0
        except ValueError:
            pass
    return acquired is not None and acquired >= S2_OFFSET_FROM


SENTINEL2_L1C = Modality(
    name="sentinel2_l1c",
    bands=tuple(_b(n, *_S2[n]) for n in S2_L1C_ORDER),
    band_sets=(S2_BAND_SETS[0], S2_BAND_SETS[1], ("B01", "B09", "B10")),
    multitemporal=True,
    units="TOA reflectance x 10000",
    dtype="uint16",
    nodata=0,
    composites=_S2_COMPOSITES,
    description="Sentinel-2 MSI Level-1C top-of-atmosphere",
    family="sentinel2",
    # ESA product types (S2MSI1C), SAFE names (S2A_MSIL1C_...), STAC collections
    # (sentinel-2-l1c on Earth Search and Planetary Computer) and the PROCESSING_LEVEL metadata.
    product_ids=("L1C", "MSIL1C", "S2MSI1C", "Level-1C", "sentinel-2-l1c"),
)
SENTINEL2_L2A = Modality(
    name="sentinel2_l2a",
    bands=tuple(_b(n, *_S2[n]) for n in S2_L2A_ORDER),
    band_sets=S2_BAND_SETS,
    multitemporal=True,
    units="BOA reflectance x 10000",
    dtype="uint16",
    nodata=0,
    composites=_S2_COMPOSITES,
    description="Sentinel-2 MSI Level-2A bottom-of-atmosphere",
    family="sentinel2",
    product_ids=("L2A", "MSIL2A", "S2MSI2A", "Level-2A", "sentinel-2-l2a"),
)

# --- Sentinel-1 C-band SAR, GRD, backscatter in dB ---------------------------------------------
SENTINEL1 = Modality(
    name="sentinel1",
    bands=(
        _b("VV", None, None, 10, -11.648990747328444, 10.840350299936597, "vv"),
        _b("VH", None, None, 10, -17.745436133270044, 10.216274681392647, "vh"),
    ),
    band_sets=(("VV", "VH"),),
    multitemporal=True,
    units="backscatter dB",
    dtype="float32",
    nodata=None,
    composites=(
        Composite(
            "vv_vh_ratio",
            ("VV", "VH", "VV-VH"),
            ((-25, 0), (-30, -5), (0, 15)),
            "VV, VH and VV/VH ratio (dB)",
        ),
    ),
    description="Sentinel-1 GRD, VV and VH, sigma0 in dB (linear sources are converted)",
    family="sentinel1",
    # GRD product types of the IW/EW/SM modes (S1A_IW_GRDH_1SDV_...) and the STAC collection.
    product_ids=("GRD", "GRDH", "GRDM", "GRDF", "sentinel-1-grd"),
)

# --- Landsat 8/9 OLI-TIRS, Collection 2 Level-1 DN ----------------------------------------------
_LS = {
    "B1": ("coastal", 0.443, 30, 11000.959519415692, 7857.9205791510285),
    "B2": ("blue", 0.482, 30, 10493.416292898208, 7872.392135393957),
    "B3": ("green", 0.562, 30, 10146.318478942761, 7676.2774595217115),
    "B4": ("red", 0.655, 30, 10236.446029167704, 8038.218121686258),
    "B5": ("nir08", 0.865, 30, 14427.021492873682, 9302.431605916356),
    "B6": ("swir16", 1.609, 30, 12164.08145353199, 7442.390533225441),
    "B7": ("swir22", 2.201, 30, 9712.032951062303, 6037.712185433222),
    "B8": ("pan", 0.590, 15, 10132.090998288624, 7788.7282476413675),
    "B9": ("cirrus", 1.373, 30, 4585.469566989013, 2549.745355740949),
    "B10": ("lwir11", 10.895, 100, 21347.89356940543, 10957.2815012006),
    "B11": ("lwir12", 12.005, 100, 19686.23205859348, 9911.421224126807),
}
LANDSAT = Modality(
    name="landsat",
    bands=tuple(_b(n, *v, n.lower(), f"B{int(n[1:]):02d}") for n, v in _LS.items()),
    band_sets=(("B8",), ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B9", "B10", "B11")),
    multitemporal=True,
    units="Level-1 DN",
    dtype="uint16",
    nodata=0,
    composites=(
        Composite("true_color", ("B4", "B3", "B2"), ((5000, 25000),) * 3),
        Composite("false_color", ("B5", "B4", "B3"), ((5000, 30000),) + ((5000, 25000),) * 2),
    ),
    description="Landsat 8/9 OLI-TIRS Collection 2 Level-1",
    family="landsat",
    # Collection 2 Level-1 processing levels (LC08_L1TP_...) and the STAC collection.
    product_ids=("L1TP", "L1GT", "L1GS", "landsat-c2-l1"),
)

# --- NAIP aerial imagery (USDA National Agriculture Imagery Program) ----------------------------
# Four bands, 0.6-1 m (gsd_m 1.0 here; newer states fly 0.6 m), delivered as uint8 (most states)
# or uint16. Band centres (um) are approximate: NAIP has been flown with different four-band
# cameras over the years and states, so no single spectral response fits, and
# 0.465/0.555/0.635/0.860 um are the commonly quoted centres. They were not checked against the
# USDA FPAC-BC NAIP specification itself (no copy of it was at hand); fix them here if it differs.
#
# nodata = 65535 and dtype uint16, not the registry's usual nodata 0: a valid 0 is common in NAIP
# (the NIR band over water is 0 in the real Chesapeake tiles), and
# ``earthplat.data.materialize._to_storage`` lifts every valid value to at least 1 when nodata is
# 0 (so that it can never read as nodata), which would change those pixels. With 65535 every
# 8-bit value 0..255 is stored unchanged; 16-bit NAIP deliveries do not reach the top of the
# uint16 range in practice (a pixel that did would be stored as nodata).
#
# Statistics (mean, std per band): ``band_stats`` over the three real 8-bit GEO-Bench Chesapeake
# tiles, all 3 x 65536 pixels of each band (no nodata), rounded to 4 decimals; the test of NAIP in
# tests/unit/earthplat/test_sensors.py recomputes them. The command:
#   .venv/bin/python -c "import glob; from earthplat.data.band_stats import band_stats as s;
#     print(s(sorted(glob.glob('../shared/data/real/chesapeake_naip_geobench/*_rgbn.tif'))))"
# Three tiles from one region, one of them 99.7 % water, are a small sample: for other states,
# seasons or 16-bit products compute them over your own tiles and register a custom sensor
# (``band_stats`` + ``sensor_yaml``, see earthplat.sensors.file).
NAIP = Modality(
    name="naip",
    bands=(
        _b("R", "red", 0.635, 1.0, 144.3487, 65.0363, "band1", "B1"),
        _b("G", "green", 0.555, 1.0, 158.2748, 55.9134, "band2", "B2"),
        _b("B", "blue", 0.465, 1.0, 155.5607, 51.5569, "band3", "B3"),
        _b("NIR", "nir", 0.860, 1.0, 118.3419, 94.0029, "N", "band4", "B4"),
    ),
    band_sets=(("R", "G", "B", "NIR"),),
    multitemporal=True,
    units="DN (8-bit 0..255 for most deliveries)",
    dtype="uint16",
    nodata=65535,
    composites=(
        Composite("true_color", ("R", "G", "B"), ((0, 255),) * 3, "natural colour"),
        Composite("false_color", ("NIR", "R", "G"), ((0, 255),) * 3, "colour infrared"),
    ),
    description="USDA NAIP aerial imagery, R G B NIR at 0.6-1 m",
    family="naip",
    product_ids=("naip", "usda-naip"),
)

# --- Decode-only maps --------------------------------------------------------------------------
WORLDCOVER_CLASSES = {
    10: "tree cover",
    20: "shrubland",
    30: "grassland",
    40: "cropland",
    50: "built-up",
    60: "bare / sparse vegetation",
    70: "snow and ice",
    80: "permanent water bodies",
    90: "herbaceous wetland",
    95: "mangroves",
    100: "moss and lichen",
}
WORLDCOVER = Modality(
    name="worldcover",
    bands=(_b("B1", None, None, 10, 34.05, 24.23, "map", "label"),),
    band_sets=(("B1",),),
    multitemporal=False,
    decode_only=True,
    units="class code",
    dtype="uint8",
    nodata=0,
    categorical=True,
    classes=WORLDCOVER_CLASSES,
    description="ESA WorldCover 10 m land cover",
)
DEM = Modality(
    name="dem",
    bands=(_b("elevation", None, None, 30, 677.02, 993.17, "srtm", "dem", "B1"),),
    band_sets=(("elevation",),),
    multitemporal=False,
    decode_only=True,
    units="metres",
    dtype="float32",
    nodata=-32768,
    description="Elevation (SRTM or Copernicus DEM)",
)
OSM_CATEGORIES = (
    "aerialway_pylon",
    "aerodrome",
    "airstrip",
    "amenity_fuel",
    "building",
    "chimney",
    "communications_tower",
    "crane",
    "flagpole",
    "fountain",
    "generator_wind",
    "helipad",
    "highway",
    "leisure",
    "lighthouse",
    "obelisk",
    "observatory",
    "parking",
    "petroleum_well",
    "power_plant",
    "power_substation",
    "power_tower",
    "river",
    "runway",
    "satellite_dish",
    "silo",
    "storage_tank",
    "taxiway",
    "water_tower",
    "works",
)
"""The 30 OpenStreetMap feature categories OlmoEarth rasterises (one presence channel each)."""
OPENSTREETMAP = Modality(
    name="openstreetmap",
    bands=tuple(_b(c, None, None, 10, 0.5, 0.5) for c in OSM_CATEGORIES),
    band_sets=(OSM_CATEGORIES,),
    multitemporal=False,
    decode_only=True,
    units="presence (0/1)",
    dtype="uint8",
    nodata=None,
    categorical=True,
    description="OpenStreetMap features rasterised as one presence channel per category",
)
CANOPY_HEIGHT = Modality(
    name="canopy_height",
    bands=(_b("height", None, None, 10, 10.0, 5.0, "B1"),),
    band_sets=(("height",),),
    multitemporal=False,
    decode_only=True,
    units="metres",
    dtype="float32",
    nodata=None,
    description="Canopy height (e.g. WRI/Meta 1 m, resampled)",
)

WORLDCEREAL_PRODUCTS = (
    "tc-annual-temporarycrops-classification",
    "tc-maize-main-irrigation-classification",
    "tc-maize-main-maize-classification",
    "tc-maize-second-irrigation-classification",
    "tc-maize-second-maize-classification",
    "tc-springcereals-springcereals-classification",
    "tc-wintercereals-irrigation-classification",
    "tc-wintercereals-wintercereals-classification",
)
WORLDCEREAL = Modality(
    name="worldcereal",
    bands=tuple(_b(c, None, None, 10, 50.0, 50.0) for c in WORLDCEREAL_PRODUCTS),
    band_sets=(WORLDCEREAL_PRODUCTS,),
    multitemporal=False,
    decode_only=True,
    units="ESA WorldCereal product values",
    dtype="uint8",
    nodata=255,
    categorical=True,
    description="ESA WorldCereal 2021 crop-type and irrigation products",
)
CDL = Modality(
    name="cdl",
    bands=(_b("cdl", None, None, 30, 100.0, 50.0, "B1"),),
    band_sets=(("cdl",),),
    multitemporal=False,
    decode_only=True,
    units="USDA CDL class code",
    dtype="uint8",
    nodata=0,
    categorical=True,
    description="USDA Cropland Data Layer (United States)",
)
LABEL = Modality(
    name="label",
    bands=(_b("class", None, None, 10, 0.0, 1.0, "label", "B1"),),
    band_sets=(("class",),),
    multitemporal=False,
    decode_only=True,
    units="class id",
    dtype="int16",
    nodata=-1,
    categorical=True,
    description="A labelled class raster (task labels; -1 = unlabelled)",
)

# --- Product levels ---------------------------------------------------------------------------
PRODUCT_ONLY_BANDS: dict[str, tuple[str, ...]] = {
    "sentinel2_l2a": ("SCL", "AOT", "WVP"),
}
"""Auxiliary bands that only one product level carries and that the registry does not list as
model bands: Sen2Cor's scene classification, aerosol optical thickness and water vapour (L2A).
Bands of the registry that only one member of a family has (B10 in L1C) count as well."""

UNREGISTERED_PRODUCTS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "landsat": (
        ("Landsat Collection 2 Level-2 surface reflectance", ("L2SP", "L2SR", "landsat-c2-l2")),
    ),
    "sentinel1": (("Sentinel-1 SLC (complex values, not GRD backscatter)", ("SLC",)),),
}
"""Products of a family that no modality holds, so that ``detect_product`` can say what a file is
instead of letting it pass for the registered level (label, product ids)."""
