"""The one sensor registry: modalities, bands, band sets, normalisation and display composites.

Models, data ingestion, UI composites and exports all read this table; nothing else in the
project hard-codes a band list. Facts come from the mission documentation (ESA Sentinel-2 MSI and
Sentinel-1 SAR user guides, USGS Landsat 8/9 OLI-TIRS) and from OlmoEarth: its band sets and its
per-band normalisation statistics (``computed.json`` of olmoearth_pretrain), which map
mean +/- 2 std to [0, 1].

The registry holds the built-in modalities below plus custom sensors: ``register_modality`` adds
one, and YAML files listed in the ``EARTHPLAT_SENSORS`` environment variable (``os.pathsep``
separated files or directories of ``*.yaml``) are registered on the first lookup. The format of
those files is documented in ``earthplat.sensor_file``. ``get_modality`` looks a modality up,
``modalities()`` lists them; ``MODALITIES`` is a read-only mapping over the same registry.

Product levels are facts here too: each modality names its sensor ``family`` and the
``product_ids`` that identify it in metadata, and ``detect_product`` reads those to tell, say,
a Sentinel-2 L2A file from an L1C one.

Importing this module is cheap (no numpy, torch or yaml at import time).
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Band:
    """One spectral (or derived) band."""

    name: str
    """Canonical band name, e.g. ``B04``, ``VV``."""
    common_name: str | None
    """STAC ``eo`` common name (``red``, ``nir08``...), ``None`` where none exists."""
    wavelength_um: float | None
    """Centre wavelength in micrometres (``None`` for SAR and maps)."""
    gsd_m: float
    """Native ground sample distance in metres."""
    mean: float
    """Normalisation mean, in stored units (DN, dB, metres, class code)."""
    std: float
    """Normalisation standard deviation, in stored units."""
    aliases: tuple[str, ...] = ()
    """Other names the band goes by in STAC catalogues and files (asset keys, ``B4``, ``b04``)."""


@dataclass(frozen=True)
class Composite:
    """Three bands (or band expressions) rendered as RGB with a value range per channel."""

    name: str
    """Preset name (``true_color``, ``false_color``...)."""
    bands: tuple[str, str, str]
    """Band names; ``A-B`` means the difference of two bands (e.g. ``VV-VH`` in dB)."""
    ranges: tuple[tuple[float, float], ...]
    """(low, high) per channel in stored units, mapped to 0..255."""
    description: str = ""


@dataclass(frozen=True)
class Modality:
    """A sensor product or a map, as the models and the data pipeline see it."""

    name: str
    """Registry name (``sentinel2_l2a``); lowercase letters, digits and ``_``."""
    bands: tuple[Band, ...]
    """Every band, in the canonical order of the modality."""
    band_sets: tuple[tuple[str, ...], ...]
    """Groups tokenised together (one token per patch, time step and band set)."""
    multitemporal: bool
    """Time series (imagery) or static (maps, elevation)."""
    decode_only: bool = False
    """Maps are prediction targets only, never encoder inputs."""
    units: str = ""
    """What a stored value means (``TOA reflectance x 10000``, ``backscatter dB``)."""
    dtype: str = "uint16"
    """Storage dtype of materialised layers."""
    nodata: float | None = 0
    """Value that marks invalid pixels in materialised layers (``None``: NaN for float dtypes)."""
    categorical: bool = False
    """Class codes rather than continuous values (resampled with nearest neighbour)."""
    classes: dict[int, str] = field(default_factory=dict)
    """Class code -> name, for categorical maps."""
    composites: tuple[Composite, ...] = ()
    """Display presets (UI tiles, previews)."""
    description: str = ""
    """One line for people."""
    family: str = ""
    """The instrument family shared by the product levels of one sensor (``sentinel2`` for both
    L1C and L2A); ``detect_product`` tells the members of a family apart. Empty for maps."""
    product_ids: tuple[str, ...] = ()
    """Case-insensitive names of this product in metadata, STAC and file names (``MSIL2A``,
    ``Level-2A``, ``sentinel-2-l2a``), matched on token boundaries (see ``detect_product``)."""

    # --- lookups -----------------------------------------------------------------------
    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)

    def band(self, name: str) -> Band:
        """Band by canonical name, common name or alias (case-insensitive)."""
        key = name.strip()
        for b in self.bands:
            if key.upper() == b.name.upper():
                return b
        lowered = key.lower()
        for b in self.bands:
            if lowered == (b.common_name or "").lower() or lowered in (
                a.lower() for a in b.aliases
            ):
                return b
        from earthplat.errors import SensorError

        raise SensorError(
            f"{self.name} has no band {name!r}; its bands are {', '.join(self.band_names)}"
        )

    def canonical(self, names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.band(n).name for n in names)

    def composite(self, name: str) -> Composite:
        for c in self.composites:
            if c.name == name:
                return c
        from earthplat.errors import SensorError

        known = ", ".join(c.name for c in self.composites) or "none"
        raise SensorError(f"{self.name} has no composite {name!r}; known: {known}")

    def stats(self, bands: tuple[str, ...] | None = None) -> tuple[list[float], list[float]]:
        chosen = [self.band(b) for b in (bands or self.band_names)]
        return [b.mean for b in chosen], [b.std for b in chosen]


def _b(name, common, wl, gsd, mean, std, *aliases) -> Band:
    return Band(name, common, wl, gsd, mean, std, tuple(aliases))


# --- Sentinel-2 MSI ---------------------------------------------------------------------------
# Statistics: OlmoEarth's computed.json (L2A, harmonised DN). L1C reuses them (TOA is somewhat
# brighter than BOA, but the mapping only has to land values near [0, 1]); B10 (cirrus, L1C only)
# has no published statistic: 25 +/- 50 DN is our estimate from typical cirrus-band TOA values.
_S2 = {
    "B01": ("coastal", 0.443, 60, 1115.85, 1955.70, "coastal", "B1", "b01"),
    "B02": ("blue", 0.490, 10, 1188.94, 1859.19, "blue", "B2", "b02"),
    "B03": ("green", 0.560, 10, 1407.77, 1727.74, "green", "B3", "b03"),
    "B04": ("red", 0.665, 10, 1513.06, 1740.78, "red", "B4", "b04"),
    "B05": ("rededge071", 0.705, 20, 1890.99, 1754.73, "rededge1", "rededge", "B5", "b05"),
    "B06": ("rededge075", 0.740, 20, 2483.78, 1622.12, "rededge2", "B6", "b06"),
    "B07": ("rededge078", 0.783, 20, 2722.73, 1621.82, "rededge3", "B7", "b07"),
    "B08": ("nir", 0.842, 10, 2755.48, 1612.26, "nir", "B8", "b08"),
    "B8A": ("nir08", 0.865, 20, 2885.57, 1611.36, "nir08", "B08A", "b8a"),
    "B09": ("nir09", 0.945, 60, 3269.81, 2651.09, "nir09", "B9", "b09"),
    "B10": ("cirrus", 1.375, 60, 25.0, 50.0, "cirrus", "b10"),
    "B11": ("swir16", 1.610, 20, 2562.85, 1441.55, "swir16", "b11"),
    "B12": ("swir22", 2.190, 20, 1914.14, 1328.89, "swir22", "b12"),
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
        _b("VV", None, None, 10, -11.649, 10.840, "vv"),
        _b("VH", None, None, 10, -17.745, 10.216, "vh"),
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
    "B1": ("coastal", 0.443, 30, 11000.96, 7857.92),
    "B2": ("blue", 0.482, 30, 10493.42, 7872.39),
    "B3": ("green", 0.562, 30, 10146.32, 7676.28),
    "B4": ("red", 0.655, 30, 10236.45, 8038.22),
    "B5": ("nir08", 0.865, 30, 14427.02, 9302.43),
    "B6": ("swir16", 1.609, 30, 12164.08, 7442.39),
    "B7": ("swir22", 2.201, 30, 9712.03, 6037.71),
    "B8": ("pan", 0.590, 15, 10132.09, 7788.73),
    "B9": ("cirrus", 1.373, 30, 4585.47, 2549.75),
    "B10": ("lwir11", 10.895, 100, 21347.89, 10957.28),
    "B11": ("lwir12", 12.005, 100, 19686.23, 9911.42),
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
#     print(s(sorted(glob.glob('/work/shared/data/real/chesapeake_naip_geobench/*_rgbn.tif'))))"
# Three tiles from one region, one of them 99.7 % water, are a small sample: for other states,
# seasons or 16-bit products compute them over your own tiles and register a custom sensor
# (``band_stats`` + ``sensor_yaml``, see earthplat.sensor_file).
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

# --- The registry -----------------------------------------------------------------------------
_BUILTIN: dict[str, Modality] = {
    m.name: m
    for m in (
        SENTINEL2_L2A,
        SENTINEL2_L1C,
        SENTINEL1,
        LANDSAT,
        NAIP,
        WORLDCOVER,
        DEM,
        OPENSTREETMAP,
        CANOPY_HEIGHT,
        WORLDCEREAL,
        CDL,
        LABEL,
    )
}
_SHORTHANDS = {
    "s2": "sentinel2_l2a",
    "s2_l2a": "sentinel2_l2a",
    "s2_l1c": "sentinel2_l1c",
    "s1": "sentinel1",
    "landsat8": "landsat",
    "landsat9": "landsat",
}
SENSORS_ENV = "EARTHPLAT_SENSORS"
"""Environment variable naming custom-sensor YAML files, or directories of ``*.yaml``/``*.yml``,
separated by ``os.pathsep``; they are registered on the first registry lookup."""

_custom: dict[str, Modality] = {}
_custom_source: dict[str, str] = {}
_env_loaded = False
_env_loading = False
_lock = threading.RLock()

_INT_RANGES = {
    "uint8": (0, 2**8 - 1),
    "int8": (-(2**7), 2**7 - 1),
    "uint16": (0, 2**16 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint32": (0, 2**32 - 1),
    "int32": (-(2**31), 2**31 - 1),
}
STORAGE_DTYPES = (*_INT_RANGES, "float32", "float64")
"""The dtypes a modality can be materialised in."""


def dtype_range(dtype: str) -> tuple[float, float] | None:
    """(min, max) of an integer storage dtype; ``None`` for float dtypes."""
    return _INT_RANGES.get(dtype)


def _load_env_sensors() -> None:
    """Register the sensors of ``EARTHPLAT_SENSORS`` once, all or none of them. Other threads
    wait for the load; a failed load is retried (and fails again) on the next lookup, so a
    process never carries on silently without its custom sensors."""
    global _env_loaded, _env_loading
    if _env_loaded:
        return
    with _lock:
        if _env_loaded or _env_loading:  # loading: this thread re-entered while loading
            return
        value = os.environ.get(SENSORS_ENV, "")
        if not value.strip():
            _env_loaded = True
            return
        from earthplat.errors import EarthplatError
        from earthplat.sensor_file import read_sensor_file, sensor_paths

        _env_loading = True
        added: list[str] = []
        try:
            for path in sensor_paths(value):
                for m, replace in read_sensor_file(path):
                    _register(m, replace=replace, source=str(path))
                    added.append(m.name)
            _env_loaded = True
        except BaseException as err:
            for name in added:
                _custom.pop(name, None)
                _custom_source.pop(name, None)
            if isinstance(err, EarthplatError):
                raise type(err)(f"{SENSORS_ENV}={value!r}: {err}") from err
            raise
        finally:
            _env_loading = False


def _register(m: Modality, *, replace: bool, source: str | None) -> None:
    from earthplat.errors import SensorError

    check_modality(m)
    where = f" (from {source})" if source else ""
    if m.name in _SHORTHANDS:
        raise SensorError(
            f"modality name {m.name!r}{where} is a shorthand for {_SHORTHANDS[m.name]}; "
            "choose another name"
        )
    if not replace:
        if m.name in _BUILTIN and _BUILTIN[m.name] != m:
            raise SensorError(
                f"modality {m.name!r}{where} is a built-in modality; choose another name, or "
                "replace the built-in on purpose (`replace: true` in the sensor file, "
                "register_modality(..., replace=True) in Python)"
            )
        old = _custom.get(m.name)
        if old is not None and old != m:
            before = _custom_source.get(m.name)
            raise SensorError(
                f"a different custom modality {m.name!r} is already registered"
                + (f" from {before}" if before else "")
                + (f"; this one comes from {source}" if source else "")
                + "; give one of them another name, or replace it on purpose (replace=True)"
            )
    with _lock:
        _custom[m.name] = m
        if source:
            _custom_source[m.name] = source


def register_modality(m: Modality, *, replace: bool = False) -> None:
    """Add a custom modality to the registry, after checking it (``check_modality``).

    A name that a built-in modality (or another custom one) already has is refused unless
    ``replace``; registering the same modality twice is a no-op."""
    _load_env_sensors()
    _register(m, replace=replace, source=None)


def register_sensor_file(path: str | Path) -> list[Modality]:
    """Load a custom-sensor YAML file (see ``earthplat.sensor_file``) and register its sensors,
    honouring each one's ``replace``; returns them."""
    _load_env_sensors()
    from earthplat.sensor_file import read_sensor_file

    pairs = read_sensor_file(path)
    for m, replace in pairs:
        _register(m, replace=replace, source=str(path))
    return [m for m, _ in pairs]


def load_sensor_file(path: str | Path) -> list[Modality]:
    """The modalities of a custom-sensor YAML file, validated but not registered (see
    ``earthplat.sensor_file`` for the format; ``register_sensor_file`` also registers them)."""
    from earthplat.sensor_file import load_sensor_file as load

    return load(path)


def reset_custom_modalities() -> None:
    """Forget every custom modality and that ``EARTHPLAT_SENSORS`` was read (the next lookup
    reads it again). For tests and long-lived processes whose sensor files changed."""
    global _env_loaded
    with _lock:
        _custom.clear()
        _custom_source.clear()
        _env_loaded = False


def modalities() -> list[Modality]:
    """Every registered modality: the built-ins, then custom sensors (a custom one that replaces
    a built-in takes its place)."""
    _load_env_sensors()
    merged = {**_BUILTIN, **_custom}
    return list(merged.values())


def get_modality(name: str) -> Modality:
    """Look a modality up by name (``sentinel2_l2a``; ``s2``/``s1`` are accepted shorthands),
    built-in or custom."""
    _load_env_sensors()
    key = _SHORTHANDS.get(name, name)
    found = _custom.get(key) or _BUILTIN.get(key)
    if found is None:
        from earthplat.errors import SensorError

        known = ", ".join(m.name for m in modalities())
        raise SensorError(
            f"unknown modality {name!r}; known: {known} (a custom sensor is added with a YAML "
            f"file listed in {SENSORS_ENV}, see earthplat.sensor_file)"
        )
    return found


class _Registry(Mapping[str, Modality]):
    """Read-only name -> modality view of the registry (built-in and custom)."""

    def __getitem__(self, name: str) -> Modality:
        _load_env_sensors()
        found = _custom.get(name) or _BUILTIN.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter([m.name for m in modalities()])

    def __len__(self) -> int:
        return len(modalities())

    def __repr__(self) -> str:
        return f"MODALITIES({', '.join(self)})"


MODALITIES: Mapping[str, Modality] = _Registry()
"""Every registered modality by name; prefer ``get_modality`` (shorthands, clear errors) and
``modalities()``."""


def check_modality(m: Modality) -> None:
    """Raise ``SensorError`` naming every inconsistency of a modality: band names, common names
    and aliases that would look up two different bands, band sets that do not hold every band
    exactly once, composites over unknown bands, non-positive std or GSD, a dtype that cannot be
    stored, a nodata value the dtype cannot hold."""
    problems: list[str] = []
    if not re.fullmatch(r"[a-z][a-z0-9_]*", m.name):
        problems.append("its name must be lowercase letters, digits and _ (e.g. 'my_sensor')")
    if not m.bands:
        problems.append("it has no bands")
    owner: dict[str, str] = {}
    for b in m.bands:
        if not (math.isfinite(b.mean) and math.isfinite(b.std) and b.std > 0):
            problems.append(f"band {b.name}: mean must be finite and std positive")
        if not (math.isfinite(b.gsd_m) and b.gsd_m > 0):
            problems.append(f"band {b.name}: gsd_m must be positive")
        for key in {k.lower() for k in (b.name, b.common_name or "", *b.aliases) if k}:
            if key in owner and owner[key] != b.name:
                problems.append(f"{key!r} would name both band {owner[key]} and band {b.name}")
            owner.setdefault(key, b.name)
    in_sets = [n for s in m.band_sets for n in s]
    if sorted(in_sets) != sorted(m.band_names):
        problems.append(
            f"band_sets {[list(s) for s in m.band_sets]} must hold every band "
            f"({', '.join(m.band_names)}) exactly once"
        )
    for c in m.composites:
        if len(c.bands) != 3 or len(c.ranges) != 3:
            problems.append(f"composite {c.name}: needs 3 bands and 3 (low, high) ranges")
        unknown = [p for e in c.bands for p in e.split("-") if p.lower() not in owner]
        if unknown:
            problems.append(f"composite {c.name}: unknown bands {', '.join(unknown)}")
        if any(len(r) != 2 or not r[0] < r[1] for r in c.ranges):
            problems.append(f"composite {c.name}: each range must be (low, high) with low < high")
    if m.dtype not in STORAGE_DTYPES:
        problems.append(f"dtype {m.dtype!r} is not one of {', '.join(STORAGE_DTYPES)}")
    elif m.nodata is not None:
        rng = dtype_range(m.dtype)
        if rng is not None and (m.nodata != int(m.nodata) or not rng[0] <= m.nodata <= rng[1]):
            problems.append(f"nodata {m.nodata} does not fit dtype {m.dtype} ({rng[0]}..{rng[1]})")
    if problems:
        from earthplat.errors import SensorError

        raise SensorError(f"modality {m.name!r}: " + "; ".join(problems))


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


def __getattr__(name: str) -> Any:
    # ``detect_product`` lives in earthplat.product_level (it reads the facts above); importable
    # from here too, without loading it for every ``import earthplat.sensors``.
    if name == "detect_product":
        from earthplat.product_level import detect_product

        return detect_product
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def normalize(
    values: Any, modality: str | Modality, bands: tuple[str, ...] | None = None, band_axis: int = -3
) -> Any:
    """OlmoEarth normalisation: (x - (mean - 2 std)) / (4 std), per band, so that mean +/- 2 std
    maps to [0, 1]. Works on numpy arrays and torch tensors; ``band_axis`` indexes the bands."""
    m = get_modality(modality) if isinstance(modality, str) else modality
    means, stds = m.stats(bands)
    shape = [1] * values.ndim
    shape[band_axis] = len(means)
    if hasattr(values, "new_tensor"):  # torch
        mean = values.new_tensor(means).reshape(shape)
        std = values.new_tensor(stds).reshape(shape)
    else:
        import numpy as np

        mean = np.asarray(means, dtype=np.float32).reshape(shape)
        std = np.asarray(stds, dtype=np.float32).reshape(shape)
    return (values - (mean - 2 * std)) / (4 * std)
