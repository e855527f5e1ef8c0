"""The one sensor registry: modalities, bands, band sets, normalisation and display composites.

Models, data ingestion, UI composites and exports all read this table; nothing else in the
project hard-codes a band list. Facts come from the mission documentation (ESA Sentinel-2 MSI and
Sentinel-1 SAR user guides, USGS Landsat 8/9 OLI-TIRS) and from OlmoEarth: its band sets and its
per-band normalisation statistics (``computed.json`` of olmoearth_pretrain), which map
mean +/- 2 std to [0, 1].

Importing this module is cheap (no numpy or torch at import time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
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
    bands: tuple[str, str, str]
    """Band names; ``A-B`` means the difference of two bands (e.g. ``VV-VH`` in dB)."""
    ranges: tuple[tuple[float, float], ...]
    """(low, high) per channel in stored units, mapped to 0..255."""
    description: str = ""


@dataclass(frozen=True)
class Modality:
    """A sensor product or a map, as the models and the data pipeline see it."""

    name: str
    bands: tuple[Band, ...]
    band_sets: tuple[tuple[str, ...], ...]
    """Groups tokenised together (one token per patch, time step and band set)."""
    multitemporal: bool
    """Time series (imagery) or static (maps, elevation)."""
    decode_only: bool = False
    """Maps are prediction targets only, never encoder inputs."""
    units: str = ""
    dtype: str = "uint16"
    """Storage dtype of materialised layers."""
    nodata: float | None = 0
    categorical: bool = False
    """Class codes rather than continuous values (resampled with nearest neighbour)."""
    classes: dict[int, str] = field(default_factory=dict)
    composites: tuple[Composite, ...] = ()
    description: str = ""

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

MODALITIES: dict[str, Modality] = {
    m.name: m
    for m in (
        SENTINEL2_L2A,
        SENTINEL2_L1C,
        SENTINEL1,
        LANDSAT,
        WORLDCOVER,
        DEM,
        OPENSTREETMAP,
        CANOPY_HEIGHT,
        WORLDCEREAL,
        CDL,
        LABEL,
    )
}


def get_modality(name: str) -> Modality:
    """Look a modality up by name (``sentinel2_l2a``; ``s2``/``s1`` are accepted shorthands)."""
    key = {
        "s2": "sentinel2_l2a",
        "s2_l2a": "sentinel2_l2a",
        "s2_l1c": "sentinel2_l1c",
        "s1": "sentinel1",
        "landsat8": "landsat",
        "landsat9": "landsat",
    }.get(name, name)
    if key not in MODALITIES:
        from earthplat.errors import SensorError

        raise SensorError(f"unknown modality {name!r}; known: {', '.join(MODALITIES)}")
    return MODALITIES[key]


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
