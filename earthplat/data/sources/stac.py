"""STAC catalogues (search APIs and static catalogues) as items.

A ``StacSource`` finds the STAC Items of one modality that may cover a window and maps their
assets to the registry's canonical bands, so that materialisation reads them exactly like local
files (remote COGs are read with HTTP range requests through GDAL).

How an asset becomes band(s), best first (a band keeps its best-ranked asset; a GeoTIFF/COG beats
another format of equal rank, e.g. Earth Search's ``-jp2`` twins):

1. ``asset_bands``: explicit asset key -> band overrides;
2. the asset key names a band (``red``, ``B04``, ``nir08``, ``vv``), unless the asset lists
   several bands;
3. the asset's ``eo:bands`` (STAC 1.0) or ``bands`` (STAC 1.1) entries, by ``name`` then
   ``common_name``; an asset listing n bands becomes n ``Asset``s with ``band_index`` 1..n.

Thumbnails, overviews, metadata and true-colour previews (``visual``/``tci``: 8-bit renderings,
not reflectance) are skipped, as is anything that matches no band.

Which access path: a path or URL ending in ``.json`` (or a local directory holding
``catalog.json``) is a static catalogue, collection, item or item collection, read once with
``pystac`` and filtered in Python; anything else is opened with
``pystac_client.Client`` and searched if it conforms to STAC API Item Search (a static root
opened that way is walked instead). Searches are lazy: constructing a source touches no network.

With ``allowed_roots`` (a server's sources) every local file the source reads must lie under one
of those folders (``earthplat.data.sources.roots``): the catalogue, each catalogue, collection and
item JSON its links lead to, and the asset hrefs of the items a search returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from earthplat.data.sources.base import Asset, Item, QualityAsset
from earthplat.data.sources.level import check_product
from earthplat.data.sources.roots import SourceRootError, check_href
from earthplat.data.sources.stac_assets import (
    EARTH_SEARCH_S2_ASSETS,
    LANDSAT_C2_L2_ASSETS,
    PLANETARY_COMPUTER_S2_ASSETS,
    SENTINEL1_RTC_ASSETS,
    join_href,
    map_assets,
    quality_asset,
)
from earthplat.data.window import Window, parse_time
from earthplat.errors import DataError, SensorError
from earthplat.sensors import S2_L2A_BASELINE_OFFSET, get_modality, s2_needs_offset_removal

EARTH_SEARCH_V1 = "https://earth-search.aws.element84.com/v1"
PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1"


@dataclass
class StacSource:
    """Items of one modality from a STAC API or a static STAC catalogue."""

    url: str
    """A STAC API root URL, or a static catalog / collection / item / item-collection JSON given
    as a local path or an http(s) URL."""
    modality: str
    """Registry modality the assets are mapped to (``sentinel2_l2a``, ``sentinel1`` ...)."""
    collections: list[str] | None = None
    """Collection ids to search (API) or keep (static; ``None`` keeps all)."""
    max_cloud_cover: float | None = None
    """Keep items whose ``eo:cloud_cover`` (percent) is at most this; items without the property
    (e.g. SAR) are kept."""
    asset_bands: dict[str, str] | None = None
    """Explicit asset key -> band overrides, applied before the automatic mapping."""
    quality_asset: str | None = None
    """Asset key of a per-pixel quality layer (``scl``/``SCL``); matched case-insensitively."""
    quality_kind: str = "scl"
    """``scl`` (Sentinel-2 scene classification) or ``cloud_mask`` (non-zero = cloud)."""
    to_db: bool = False
    """The assets hold linear backscatter (e.g. Sentinel-1 RTC); convert to dB when reading."""
    harmonize_s2: bool = True
    """Remove the +1000 DN offset of Sentinel-2 processing baseline >= 04.00."""
    max_items: int = 500
    """Most items one search returns."""
    bands: list[str] | None = None
    """Bands every matched item must provide; an item lacking one raises ``DataError`` naming
    the band and the assets it has (``None``: no check, materialisation checks its own bands)."""
    modifier: Callable[[Any], Any] | None = None
    """Called on every STAC item before its hrefs are read, e.g.
    ``planetary_computer.sign_inplace`` (not a dependency of earthplat)."""
    headers: dict[str, str] | None = None
    """HTTP headers for the STAC requests (not for GDAL's pixel reads: set
    ``GDAL_HTTP_HEADERS`` for those)."""
    allow_substitution: bool = False
    """Accept items whose collection or properties name another product of the modality's
    family (``sentinel-2-l2a`` items as ``sentinel2_l1c``); recorded in the layer metadata."""
    allowed_roots: list[Path] | None = None
    """Folders every local file the source reads must lie under (catalogue JSON and asset
    hrefs; symlinks and ``..`` resolved); ``None`` reads anything (the CLI). A local path
    outside raises ``SourceRootError``."""

    def __post_init__(self) -> None:
        self.spec = get_modality(self.modality)
        self.modality = self.spec.name
        if self.quality_kind not in ("scl", "cloud_mask"):
            raise DataError(
                f"quality_kind must be 'scl' or 'cloud_mask', not {self.quality_kind!r}"
            )
        if self.max_items < 1:
            raise DataError(f"max_items must be >= 1, not {self.max_items}")
        try:
            self._overrides = {
                k: self.spec.band(b).name for k, b in (self.asset_bands or {}).items()
            }
            self._required = list(self.spec.canonical(self.bands or []))
        except SensorError as e:
            raise DataError(f"StacSource({self.url}): {e}") from None
        self._static: list[Any] | None = None  # a static catalogue is walked once
        check_href(self.url, self.allowed_roots)

    # --- presets -----------------------------------------------------------------------------
    @classmethod
    def earth_search_s2(cls, **kwargs: Any) -> StacSource:
        """Element 84 Earth Search v1, Sentinel-2 L2A COGs (public, unsigned), SCL masking."""
        return cls(
            **{
                "url": EARTH_SEARCH_V1,
                "collections": ["sentinel-2-l2a"],
                "modality": "sentinel2_l2a",
                "asset_bands": EARTH_SEARCH_S2_ASSETS,
                "quality_asset": "scl",
                "quality_kind": "scl",
                **kwargs,
            }
        )

    @classmethod
    def earth_search_landsat(cls, **kwargs: Any) -> StacSource:
        """Earth Search v1 ``landsat-c2-l2``. Its hrefs are ``s3://usgs-landsat`` (requester
        pays: AWS credentials and ``AWS_REQUEST_PAYER=requester``). Values are Level-2 surface
        reflectance / temperature DN, while the registry's Landsat statistics are Level-1 DN, so
        normalised values will be shifted. Earth Search v1 has no Sentinel-1 COG collection."""
        return cls(
            **{
                "url": EARTH_SEARCH_V1,
                "collections": ["landsat-c2-l2"],
                "modality": "landsat",
                "asset_bands": LANDSAT_C2_L2_ASSETS,
                **kwargs,
            }
        )

    @classmethod
    def planetary_computer_s2(cls, **kwargs: Any) -> StacSource:
        """Microsoft Planetary Computer Sentinel-2 L2A; pass
        ``modifier=planetary_computer.sign_inplace`` (assets need SAS-token signing)."""
        return cls(
            **{
                "url": PLANETARY_COMPUTER,
                "collections": ["sentinel-2-l2a"],
                "modality": "sentinel2_l2a",
                "asset_bands": PLANETARY_COMPUTER_S2_ASSETS,
                "quality_asset": "SCL",
                "quality_kind": "scl",
                **kwargs,
            }
        )

    @classmethod
    def planetary_computer_s1_rtc(cls, **kwargs: Any) -> StacSource:
        """Planetary Computer ``sentinel-1-rtc`` (VV, VH gamma0 in linear power, converted to
        dB); needs ``modifier=planetary_computer.sign_inplace``."""
        return cls(
            **{
                "url": PLANETARY_COMPUTER,
                "collections": ["sentinel-1-rtc"],
                "modality": "sentinel1",
                "asset_bands": SENTINEL1_RTC_ASSETS,
                "to_db": True,
                **kwargs,
            }
        )

    @classmethod
    def planetary_computer_landsat(cls, **kwargs: Any) -> StacSource:
        """Planetary Computer ``landsat-c2-l2`` (needs ``planetary_computer.sign_inplace``).
        Level-2 surface reflectance DN while the registry's statistics are Level-1 DN; the
        collection also holds Landsat 4-7 (filter on ``platform`` downstream if needed)."""
        return cls(
            **{
                "url": PLANETARY_COMPUTER,
                "collections": ["landsat-c2-l2"],
                "modality": "landsat",
                "asset_bands": LANDSAT_C2_L2_ASSETS,
                **kwargs,
            }
        )

    def describe(self) -> dict[str, Any]:
        return {
            "type": "stac",
            "url": self.url,
            "collections": self.collections,
            "modality": self.modality,
            "filters": {
                "max_cloud_cover": self.max_cloud_cover,
                "max_items": self.max_items,
                "bands": self._required or None,
            },
            "asset_bands": self.asset_bands,
            "quality_asset": self.quality_asset,
            "quality_kind": self.quality_kind,
            "to_db": self.to_db,
            "harmonize_s2": self.harmonize_s2,
            "modifier": getattr(self.modifier, "__qualname__", None),
        }

    # --- searching ------------------------------------------------------------------------------
    @property
    def static_href(self) -> str | None:
        """The JSON file of a static catalogue (a local directory means its catalog.json or
        collection.json); ``None`` for a STAC API."""
        if urlparse(self.url).path.lower().endswith(".json"):
            return self.url
        if "://" not in self.url and os.path.isfile(self.url):
            return self.url
        if "://" not in self.url and os.path.isdir(self.url):
            for name in ("catalog.json", "collection.json"):
                if os.path.isfile(os.path.join(self.url, name)):
                    return os.path.join(self.url, name)
            raise DataError(
                f"{self.url} is a directory without catalog.json or collection.json;"
                " give the catalogue's JSON file or a STAC API URL"
            )
        return None

    def search(self, window: Window) -> list[Item]:
        if self.static_href is not None:
            raw = self._filter_static(self._static_items(), window)
        else:
            raw = self._api_items(window)
        items: list[Item] = []
        for stac_item in raw:
            item = self.to_item(stac_item)
            if item is None or not item.in_time(window) or not self._cloud_ok(item):
                continue
            self._check_roots(item)
            items.append(item)
            if len(items) >= self.max_items:
                break
        return sorted(items, key=lambda it: (it.datetime, it.id))

    def _check_roots(self, item: Item) -> None:
        """Refuse an item with a local asset outside ``allowed_roots`` (before it is read)."""
        if self.allowed_roots is None:
            return
        hrefs = [a.href for a in item.assets.values()]
        for href in hrefs + ([item.quality.href] if item.quality else []):
            try:
                check_href(href, self.allowed_roots)
            except SourceRootError as e:
                raise SourceRootError(
                    f"STAC item {item.id} of {self.url}: {e}", path=e.path, roots=e.roots
                ) from None

    def _cloud_ok(self, item: Item) -> bool:
        cloud = item.properties.get("cloud_cover")
        return self.max_cloud_cover is None or cloud is None or cloud <= self.max_cloud_cover

    def _api_items(self, window: Window) -> Iterator[Any]:
        from pystac_client import Client
        from pystac_client.conformance import ConformanceClasses

        try:
            client = Client.open(self.url, headers=self.headers, modifier=self.modifier)
        except Exception as e:  # requests, pystac and JSON errors all mean the same here
            raise DataError(
                f"cannot open the STAC API at {self.url} ({e}); check the URL and "
                "the network, or give a static catalog.json"
            ) from None
        if not client.conforms_to(ConformanceClasses.ITEM_SEARCH):
            return self._filter_static(self._walk(client), window)
        kwargs: dict[str, Any] = {
            "collections": self.collections,
            "max_items": self.max_items,
            "intersects": window.geometry_wgs84().__geo_interface__,
            "datetime": [window.start, window.end],
        }
        if self.max_cloud_cover is not None and client.conforms_to(ConformanceClasses.QUERY):
            kwargs["query"] = {"eo:cloud_cover": {"lte": self.max_cloud_cover}}
        try:
            return iter(list(client.search(**kwargs).items()))
        except Exception as e:
            raise DataError(
                f"STAC search at {self.url} failed ({e}); check the collections "
                f"{self.collections} exist there"
            ) from None

    def _static_items(self) -> list[Any]:
        if self._static is None:
            self._static = self._walk(self._read_static())
        return self._static

    def _read_static(self) -> Any:
        import pystac

        href = self.static_href
        io = _rooted_io(self.headers, self.allowed_roots)
        try:
            d = io.read_json(href)
            if d.get("type") == "FeatureCollection":
                collection = pystac.ItemCollection.from_dict(d, preserve_dict=False)
                for it in collection.items:  # lets relative asset hrefs resolve
                    if it.get_self_href() is None:
                        it.set_self_href(join_href(href, f"{it.id}.json"))
                return collection
            return pystac.read_file(href, stac_io=io)
        except Exception as e:  # urllib, OS, JSON and STAC errors all mean the same here
            if refused := _root_error(e):
                raise refused from None
            raise DataError(
                f"cannot read the STAC catalogue {href} ({e}); check that the "
                "path or URL exists and holds STAC JSON"
            ) from None

    def _walk(self, root: Any) -> list[Any]:
        import pystac

        if isinstance(root, pystac.Item):
            found = [root]
        elif isinstance(root, pystac.ItemCollection):
            found = list(root.items)
        else:
            try:
                try:
                    found = list(root.get_items(recursive=True))
                except TypeError:  # pystac < 1.8: no recursive=
                    found = list(root.get_all_items())
            except Exception as e:  # a broken child or item link
                if refused := _root_error(e):  # pystac wraps what its StacIO raised
                    raise refused from None
                raise DataError(
                    f"cannot walk the STAC catalogue {self.url} ({e}); check its links"
                ) from None
        if not found:
            raise DataError(
                f"the STAC catalogue {self.url} holds no items; point the source at "
                "a catalogue, collection or item collection with items"
            )
        return found

    def _filter_static(self, stac_items: list[Any], window: Window) -> Iterator[Any]:
        from shapely.geometry import box, shape

        area = window.geometry_wgs84()
        for it in stac_items:
            if self.collections and it.collection_id not in self.collections:
                continue
            if it.geometry is not None:
                footprint = shape(it.geometry)
            elif it.bbox:
                footprint = box(*_bbox2d(it.bbox))
            else:
                footprint = None
            if footprint is None or footprint.intersects(area):
                if self.modifier is not None:  # an API client applies it itself
                    self.modifier(it)
                yield it

    # --- mapping --------------------------------------------------------------------------------
    def to_item(self, stac_item: Any) -> Item | None:
        """One STAC item as an ``Item`` (``None`` when no asset maps to a band)."""
        when = item_datetime(stac_item)
        if when is None:
            raise DataError(f"STAC item {stac_item.id} has neither datetime nor start_datetime")
        assets, present = self._map_assets(stac_item)
        if not assets:  # nothing of this modality (another sensor's item in a mixed catalogue)
            return None
        missing = [b for b in self._required if b not in assets]
        if missing:
            raise DataError(
                f"STAC item {stac_item.id} has no asset for band(s) {', '.join(missing)}; "
                f"its assets are {', '.join(present)} (mapped to {', '.join(assets)}); fix "
                "asset_bands or request other bands"
            )
        props = stac_item.properties
        baseline = props.get("s2:processing_baseline")
        properties: dict[str, Any] = {
            "source": "stac",
            "collection": stac_item.collection_id,
            "stac_item": stac_item.get_self_href(),
        }
        substitution = check_product(
            f"STAC item {stac_item.id}",
            self.spec,
            properties=props,
            collection=stac_item.collection_id,
            allow=self.allow_substitution,
        )
        if substitution:
            properties["substitution"] = substitution
        if props.get("eo:cloud_cover") is not None:
            properties["cloud_cover"] = float(props["eo:cloud_cover"])
        if baseline is not None:
            properties["processing_baseline"] = str(baseline)
        if (
            self.harmonize_s2
            and self.spec.name.startswith("sentinel2")
            and s2_needs_offset_removal(baseline and str(baseline), when.date())
        ):
            assets = {
                b: Asset(a.href, a.band_index, a.scale, -float(S2_L2A_BASELINE_OFFSET), a.to_db)
                for b, a in assets.items()
            }
            properties["harmonized_offset"] = -S2_L2A_BASELINE_OFFSET
        bbox = tuple(_bbox2d(stac_item.bbox)) if stac_item.bbox else None
        return Item(
            stac_item.id,
            parse_time(when),
            self.modality,
            assets,
            self._quality(stac_item),
            bbox,
            properties,
        )

    def _map_assets(self, stac_item: Any) -> tuple[dict[str, Asset], list[str]]:
        return map_assets(stac_item, self.spec, self._overrides, self.quality_asset, self.to_db)

    def _quality(self, stac_item: Any) -> QualityAsset | None:
        return quality_asset(stac_item, self.quality_asset, self.quality_kind)


def _root_error(e: BaseException | None) -> SourceRootError | None:
    """The ``SourceRootError`` in ``e``'s chain of causes, if any."""
    while e is not None:
        if isinstance(e, SourceRootError):
            return e
        e = e.__cause__ or e.__context__
    return None


def _rooted_io(headers: dict[str, str] | None, roots: list[Path] | None) -> Any:
    """pystac's ``DefaultStacIO``, refusing local files outside ``roots`` (``None``: none)."""
    from pystac.stac_io import DefaultStacIO

    class RootedStacIO(DefaultStacIO):
        def read_text_from_href(self, href: str) -> str:
            check_href(href, roots)
            return super().read_text_from_href(href)

    return RootedStacIO(headers=headers)


def _bbox2d(bbox: list[float]) -> list[float]:
    return list(bbox) if len(bbox) == 4 else [bbox[0], bbox[1], bbox[3], bbox[4]]


def item_datetime(stac_item: Any) -> datetime | None:
    """The STAC item's ``datetime``, or its ``start_datetime`` for ranged items."""
    return stac_item.datetime or stac_item.common_metadata.start_datetime
