"""Local rasters (GeoTIFF, COG, VRT; files or globs, any CRS) as items.

How each file band maps to (band, date), in order of precedence:

1. the band description: tokens split on ``_``, ``:`` or space; a token that parses as an ISO
   date gives the date and one that names a band of the modality gives the band
   (``2015-07-11_B04``, ``B2_blue``, ``VV``);
2. ``bands``: the band order of the files, when descriptions are missing;
3. the modality's own order, when the file has exactly that many bands;

and for the date: the description, the ``DATETIME``/``DATE``/``TIFFTAG_DATETIME`` tag, a
``YYYY-MM-DD`` or ``YYYYMMDD`` in the file name, or ``datetime``.
"""

from __future__ import annotations

import glob as globlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from earthplat.data.sources.base import Asset, Item, QualityAsset
from earthplat.data.window import Window, parse_time
from earthplat.errors import DataError, SensorError
from earthplat.sensors import S2_L1C_ORDER, get_modality

_DATE_RE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


def _date_token(token: str) -> datetime | None:
    try:
        return parse_time(token) if re.match(r"^\d{4}-\d{2}-\d{2}", token) else None
    except Exception:
        return None


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
    """Band order of the files when their band descriptions do not name the bands."""
    datetime: str | None = None
    """Acquisition time for files that carry none."""
    quality: str | None = None
    """A cloud-mask raster whose band descriptions are dates (one band per date)."""
    quality_kind: str = "cloud_mask"
    to_db: bool = False
    """The files hold linear backscatter (Sentinel-1); convert to dB."""
    nodata: float | None = None
    """Nodata value of the files when they do not declare one (e.g. -1 in a label raster)."""

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
            "datetime": self.datetime,
        }

    # --- scanning ------------------------------------------------------------------------
    def _band_for(self, token_list: list[str]) -> str | None:
        for tok in token_list:
            try:
                return self.spec.band(tok).name
            except SensorError:
                continue
        return None

    def _file_bands(self, path: str, src) -> list[tuple[str, datetime | None]]:
        descriptions = list(src.descriptions)
        result: list[tuple[str, datetime | None]] = []
        if all(descriptions):
            for d in descriptions:
                tokens = [t for t in re.split(r"[_:\s]+", d) if t]
                when = next((t for t in (_date_token(x) for x in re.split(r"_", d)) if t), None)
                band = self._band_for(tokens)
                if band is None:
                    break
                result.append((band, when))
            else:
                return result
        names = self.bands
        if names is None:
            if src.count == len(self.spec.bands):
                names = list(self.spec.band_names)
            elif self.spec.name.startswith("sentinel2") and src.count == len(S2_L1C_ORDER):
                names = list(S2_L1C_ORDER)
            else:
                raise DataError(
                    f"{path}: cannot tell which {self.spec.name} band each of its {src.count} "
                    f"bands is (no usable band descriptions); pass bands=[...] in file order"
                )
        if len(names) != src.count:
            raise DataError(f"{path} has {src.count} bands but bands= lists {len(names)}")
        try:
            return [(self.spec.band(n).name, None) for n in names]
        except SensorError as e:
            raise DataError(f"{path}: {e}") from None

    def _file_date(self, path: str, src) -> datetime | None:
        tags = src.tags()
        for key in ("DATETIME", "DATE", "TIFFTAG_DATETIME", "ACQUISITION_DATE"):
            if tags.get(key):
                text = tags[key].replace(":", "-", 2) if key == "TIFFTAG_DATETIME" else tags[key]
                try:
                    return parse_time(text.split(",")[0].replace(" ", "T"))
                except Exception:
                    continue
        for m in _DATE_RE.finditer(Path(path).name):  # the first run of digits that is a date
            try:
                return parse_time(f"{m.group(1)}-{m.group(2)}-{m.group(3)}")
            except Exception:
                continue
        return parse_time(self.datetime) if self.datetime else None

    def _quality_for(self) -> dict[str, QualityAsset]:
        if not self.quality:
            return {}
        import rasterio

        out = {}
        with rasterio.open(self.quality) as q:
            for i, d in enumerate(q.descriptions, start=1):
                when = _date_token(d or "")
                if when is not None:
                    out[when.date().isoformat()] = QualityAsset(self.quality, i, self.quality_kind)
        return out

    def items(self) -> list[Item]:
        if self._items is not None:
            return self._items
        import rasterio
        from rasterio.errors import RasterioIOError
        from rasterio.warp import transform_bounds

        quality = self._quality_for()
        items: dict[tuple[str, str], Item] = {}
        for path in expand_paths(self.paths):
            try:
                src_ctx = rasterio.open(path)
            except RasterioIOError as e:
                raise DataError(f"{path} is not a readable raster ({e}); check the file") from None
            with src_ctx as src:
                if src.crs is None:
                    raise DataError(
                        f"{path} has no CRS; georeference it (e.g. gdal_edit.py "
                        "-a_srs) before ingesting"
                    )
                bbox = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
                file_date = self._file_date(path, src)
                for index, (band, when) in enumerate(self._file_bands(path, src), start=1):
                    when = when or file_date
                    if when is None and not self.spec.multitemporal:
                        when = parse_time("1970-01-01")  # maps: time does not apply
                    if when is None:
                        raise DataError(
                            f"{path}: no acquisition date in its band descriptions, "
                            "tags or name; pass datetime='YYYY-MM-DD'"
                        )
                    key = (path, when.isoformat())
                    if key not in items:
                        item_id = f"{Path(path).stem}@{when:%Y-%m-%dT%H%M%S}"
                        props = {"source": "local", "path": path}
                        if self.nodata is not None:
                            props["nodata"] = self.nodata
                        items[key] = Item(
                            item_id,
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
