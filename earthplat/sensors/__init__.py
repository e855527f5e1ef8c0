"""The one sensor registry: modalities, bands, band sets, normalisation and display composites.

Models, data ingestion, UI composites and exports all read this table; nothing else in the
project hard-codes a band list. Facts come from the mission documentation (ESA Sentinel-2 MSI and
Sentinel-1 SAR user guides, USGS Landsat 8/9 OLI-TIRS) and from OlmoEarth: its band sets and its
per-band normalisation statistics (``computed.json`` of olmoearth_pretrain), which map
mean +/- 2 std to [0, 1].

The registry holds the built-in modalities below plus custom sensors: ``register_modality`` adds
one, and YAML files listed in the ``EARTHPLAT_SENSORS`` environment variable (``os.pathsep``
separated files or directories of ``*.yaml``) are registered on the first lookup. The format of
those files is documented in ``earthplat.sensors.file``. ``get_modality`` looks a modality up,
``modalities()`` lists them; ``MODALITIES`` is a read-only mapping over the same registry.

Product levels are facts here too: each modality names its sensor ``family`` and the
``product_ids`` that identify it in metadata, and ``detect_product`` reads those to tell, say,
a Sentinel-2 L2A file from an L1C one.

Modules: ``types`` (``Band``, ``Composite``, ``Modality``), ``builtin`` (the built-in
modalities), ``registry`` (lookups, custom sensors, normalisation), ``file`` (custom sensor YAML)
and ``product`` (``detect_product``). Importing the package is cheap (no numpy, torch or yaml).
"""

from __future__ import annotations

from typing import Any

from earthplat.sensors.builtin import (
    CANOPY_HEIGHT,
    CDL,
    DEM,
    LABEL,
    LANDSAT,
    NAIP,
    OPENSTREETMAP,
    OSM_CATEGORIES,
    PRODUCT_ONLY_BANDS,
    S2_BAND_SETS,
    S2_L1C_ORDER,
    S2_L2A_BASELINE_OFFSET,
    S2_L2A_ORDER,
    S2_OFFSET_FROM,
    SENTINEL1,
    SENTINEL2_L1C,
    SENTINEL2_L2A,
    UNREGISTERED_PRODUCTS,
    WORLDCEREAL,
    WORLDCEREAL_PRODUCTS,
    WORLDCOVER,
    WORLDCOVER_CLASSES,
    s2_needs_offset_removal,
)
from earthplat.sensors.registry import (
    MODALITIES,
    SENSORS_ENV,
    STORAGE_DTYPES,
    check_modality,
    dtype_range,
    get_modality,
    load_sensor_file,
    modalities,
    normalize,
    register_modality,
    register_sensor_file,
    reset_custom_modalities,
)
from earthplat.sensors.types import Band, Composite, Modality

__all__ = [
    "CANOPY_HEIGHT", "CDL", "DEM", "LABEL", "LANDSAT", "MODALITIES", "NAIP", "OPENSTREETMAP",
    "OSM_CATEGORIES", "PRODUCT_ONLY_BANDS", "S2_BAND_SETS", "S2_L1C_ORDER",
    "S2_L2A_BASELINE_OFFSET", "S2_L2A_ORDER", "S2_OFFSET_FROM", "SENSORS_ENV", "SENTINEL1",
    "SENTINEL2_L1C", "SENTINEL2_L2A", "STORAGE_DTYPES", "UNREGISTERED_PRODUCTS", "WORLDCEREAL",
    "WORLDCEREAL_PRODUCTS", "WORLDCOVER", "WORLDCOVER_CLASSES", "Band", "Composite", "Modality",
    "check_modality", "detect_product", "dtype_range", "get_modality", "load_sensor_file",
    "modalities", "normalize", "register_modality", "register_sensor_file",
    "reset_custom_modalities", "s2_needs_offset_removal",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    # ``detect_product`` (``earthplat.sensors.product``) reads the registry's product facts;
    # loaded when first asked for, not for every ``import earthplat.sensors``
    if name == "detect_product":
        from earthplat.sensors.product import detect_product

        return detect_product
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
