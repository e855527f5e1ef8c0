"""How a STAC Item's assets become the registry's bands (the ranking is described in
``earthplat.data.sources.stac``), and the asset-key tables of the catalogues earthplat knows."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urljoin

from earthplat.data.sources.base import Asset, QualityAsset
from earthplat.errors import SensorError
from earthplat.sensors import Modality

EARTH_SEARCH_S2_ASSETS = {
    "coastal": "B01",
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "rededge1": "B05",
    "rededge2": "B06",
    "rededge3": "B07",
    "nir": "B08",
    "nir08": "B8A",
    "nir09": "B09",
    "swir16": "B11",
    "swir22": "B12",
}
"""Earth Search v1 ``sentinel-2-l2a`` asset keys (quality asset: ``scl``)."""
PLANETARY_COMPUTER_S2_ASSETS = {
    k: k
    for k in ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
}
"""Planetary Computer ``sentinel-2-l2a`` asset keys (quality asset: ``SCL``)."""
LANDSAT_C2_L2_ASSETS = {
    "coastal": "B1",
    "blue": "B2",
    "green": "B3",
    "red": "B4",
    "nir08": "B5",
    "swir16": "B6",
    "swir22": "B7",
    "lwir11": "B10",
}
"""``landsat-c2-l2`` asset keys (Earth Search v1 and Planetary Computer use the same)."""
SENTINEL1_RTC_ASSETS = {"vv": "VV", "vh": "VH"}
"""Planetary Computer ``sentinel-1-rtc`` asset keys (linear power)."""

_SKIP_ROLES = {"thumbnail", "overview", "metadata", "visual"}
_SKIP_KEY_PREFIXES = ("visual", "tci", "thumbnail", "rendered_preview", "preview", "tilejson")
_NON_RASTER = ("json", "xml", "html", "text/", "image/png", "image/jpeg")


def map_assets(
    stac_item: Any,
    spec: Modality,
    overrides: dict[str, str],
    quality_key: str | None = None,
    to_db: bool = False,
) -> tuple[dict[str, Asset], list[str]]:
    """The item's band -> best asset (in ``spec``'s band order), and all its asset keys.

    ``overrides``: asset key -> canonical band, ranked first; ``quality_key``: the quality
    asset, never a band."""
    best: dict[str, tuple[tuple[int, int], Asset]] = {}
    quality_key = (quality_key or "").lower()

    def offer(band: str, rank: int, asset: Any, href: str, index: int) -> None:
        media = (asset.media_type or "").lower()
        key = (rank, 0 if "tiff" in media or not media else 1)
        if band not in best or key < best[band][0]:
            best[band] = (key, Asset(href, index, to_db=to_db))

    for key, asset in stac_item.assets.items():
        if key.lower() == quality_key or skip_asset(key, asset):
            continue
        href = absolute_href(asset, stac_item)
        entries = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
        if key in overrides:
            offer(overrides[key], 0, asset, href, 1)
            continue
        if len(entries) <= 1 and (band := band_of(spec, key)):
            offer(band, 1, asset, href, 1)
            continue
        for index, entry in enumerate(entries, start=1):
            names = (entry.get("name"), entry.get("common_name"), entry.get("eo:common_name"))
            band = next((b for b in (band_of(spec, n) for n in names) if b), None)
            if band:
                offer(band, 2, asset, href, index)
    ordered = {b: best[b][1] for b in spec.band_names if b in best}
    return ordered, sorted(stac_item.assets)


def band_of(spec: Modality, name: str | None) -> str | None:
    """The canonical band ``name`` (an alias, common name or band name) is, or ``None``."""
    if not name:
        return None
    try:
        return spec.band(name).name
    except SensorError:
        return None


def quality_asset(stac_item: Any, key: str | None, kind: str) -> QualityAsset | None:
    """The item's quality asset ``key`` (case-insensitive), or ``None``."""
    if not key:
        return None
    for k, asset in stac_item.assets.items():
        if k.lower() == key.lower():
            return QualityAsset(absolute_href(asset, stac_item), 1, kind)
    return None


def skip_asset(key: str, asset: Any) -> bool:
    """A thumbnail, overview, metadata, true-colour preview or non-raster asset."""
    roles = set(asset.roles or [])
    media = (asset.media_type or "").lower()
    return (
        bool(roles & _SKIP_ROLES)
        or key.lower().startswith(_SKIP_KEY_PREFIXES)
        or any(m in media for m in _NON_RASTER)
    )


def absolute_href(asset: Any, stac_item: Any) -> str:
    """The asset's href, made absolute against the item's own href when relative."""
    href = asset.get_absolute_href() or asset.href
    if "://" in href or os.path.isabs(href) or href.startswith("/vsi"):
        return href
    base = stac_item.get_self_href()
    return join_href(base, href) if base else href


def join_href(base: str, href: str) -> str:
    if "://" in base:
        return urljoin(base, href)
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(base)), href))
