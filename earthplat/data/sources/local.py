"""Local rasters (GeoTIFF, COG, VRT; files or globs, any CRS) as items.

Which file band is which (band, date) is decided by ``earthplat.data.sources.bands`` (the
mapping predict uses too): band descriptions, ``bands`` (``--file_bands``) and ``dates``
(``--dates``), or the modality's own order; bands without a date take the file's date tag, a
date in its name, or ``datetime``. The product level the file's metadata states (Sentinel-2
L1C or L2A) must be the modality asked for (``earthplat.data.sources.level``). With
``allowed_roots`` (a server's sources) every file, after glob expansion, must lie under one of
those folders (``earthplat.data.sources.roots``).
"""

from __future__ import annotations

import glob as globlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from earthplat.data.sources.bands import date_token, file_date, map_file_bands
from earthplat.data.sources.base import Asset, Item, QualityAsset
from earthplat.data.sources.level import check_product
from earthplat.data.sources.roots import check_href
from earthplat.data.window import Window, parse_time
from earthplat.errors import DataError
from earthplat.sensors import get_modality


def expand_paths(paths: list[str] | str) -> list[str]:
    out: list[str] = []
    for p in [paths] if isinstance(paths, str) else paths:
        if any(ch in p for ch in "*?["):
            matches = sorted(globlib.glob(p, recursive=True))
            if not matches:
                raise DataError(f"the pattern {p!r} matches no files")
            out.extend(matches)
        elif "://" in p or p.startswith("/vsi"):
            out.append(p)
        else:
            if not Path(p).exists():
                raise DataError(f"{p} does not exist")
            out.append(p)
    return out


@dataclass
class LocalSource:
    """Items from local (or GDAL-readable) raster files of one modality."""

    paths: list[str]
    modality: str
    bands: list[str] | None = None
    """Band names of the files in order (``BAND`` or ``DATE_BAND``) when their band
    descriptions do not name the bands (``--file_bands``)."""
    datetime: str | None = None
    """Acquisition time for files that carry none (``--datetime``)."""
    quality: str | None = None
    """A cloud-mask raster whose band descriptions are dates (one band per date)."""
    quality_kind: str = "cloud_mask"
    to_db: bool = False
    """The files hold linear backscatter (Sentinel-1); convert to dB."""
    nodata: float | None = None
    """Nodata value of the files when they do not declare one (e.g. -1 in a label raster)."""
    dates: list[str] | None = None
    """Dates of a multi-date file without dated band descriptions (``--dates``): one per block
    of ``bands`` (date-major) or one per file band."""
    allow_substitution: bool = False
    """Accept files whose metadata names another product of the modality's family (L2A given
    as L1C); the substitution is recorded in each item (and so in the layer metadata)."""
    allowed_roots: list[Path] | None = None
    """Folders every file (and ``quality``) must lie under, symlinks and ``..`` resolved;
    ``None`` reads anything (the CLI). A file outside raises ``SourceRootError``."""

    def __post_init__(self) -> None:
        self.spec = get_modality(self.modality)
        self.modality = self.spec.name
        self._items: list[Item] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "type": "local",
            "paths": self.paths,
            "modality": self.modality,
            "bands": self.bands,
            "dates": self.dates,
            "datetime": self.datetime,
        }

    # --- scanning ------------------------------------------------------------------------
    def _quality_for(self) -> dict[str, QualityAsset]:
        if not self.quality:
            return {}
        import rasterio

        check_href(self.quality, self.allowed_roots)
        out = {}
        with rasterio.open(self.quality) as q:
            for i, d in enumerate(q.descriptions, start=1):
                when = date_token(d or "")
                if when is not None:
                    out[when.date().isoformat()] = QualityAsset(self.quality, i, self.quality_kind)
        return out

    def items(self) -> list[Item]:
        if self._items is not None:
            return self._items
        import warnings

        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
        from rasterio.warp import transform_bounds

        quality = self._quality_for()
        paths = expand_paths(self.paths)
        for path in paths:  # all of them before reading any
            check_href(path, self.allowed_roots)
        items: dict[tuple[str, str], Item] = {}
        for path in paths:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", NotGeoreferencedWarning)
                    src_ctx = rasterio.open(path)
            except RasterioIOError as e:
                raise DataError(f"{path} is not a readable raster ({e}); check the file") from None
            with src_ctx as src:
                if src.crs is None:
                    raise DataError(
                        f"{path} has no CRS; georeference it before ingesting (earthplat "
                        "raster georef IN OUT --crs EPSG:N --bounds minx miny maxx maxy)"
                    )
                tags, descriptions = src.tags(), list(src.descriptions)
                substitution = check_product(
                    path,
                    self.spec,
                    tags=tags,
                    descriptions=descriptions,
                    allow=self.allow_substitution,
                )
                bbox = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
                mapping = map_file_bands(
                    path,
                    count=src.count,
                    descriptions=descriptions,
                    modality=self.spec,
                    names=self.bands,
                    dates=self.dates,
                )
                date = file_date(path, tags, self.datetime)
            for index, (band, when) in enumerate(mapping, start=1):
                when = when or date
                if when is None and not self.spec.multitemporal:
                    when = parse_time("1970-01-01")  # maps: time does not apply
                if when is None:
                    raise DataError(
                        f"{path}: no acquisition date in its band descriptions, tags or name; "
                        "pass --datetime YYYY-MM-DD (one date for the file) or --dates (one "
                        "per date block of a multi-date file)"
                    )
                key = (path, when.isoformat())
                if key not in items:
                    props: dict[str, Any] = {"source": "local", "path": path}
                    if self.nodata is not None:
                        props["nodata"] = self.nodata
                    if substitution:
                        props["substitution"] = substitution
                    items[key] = Item(
                        f"{Path(path).stem}@{when:%Y-%m-%dT%H%M%S}",
                        when,
                        self.modality,
                        {},
                        quality.get(when.date().isoformat()),
                        bbox,
                        props,
                    )
                items[key].assets[band] = Asset(path, index, to_db=self.to_db)
        self._items = sorted(items.values(), key=lambda it: (it.datetime, it.id))
        return self._items

    def search(self, window: Window) -> list[Item]:
        static = not self.spec.multitemporal
        return [
            it for it in self.items() if (static or it.in_time(window)) and it.intersects(window)
        ]
