"""``Item``: one acquisition, its bands mapped to readable assets; ``Source``: finds items."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from earthplat.data.window import Window, parse_time


@dataclass(frozen=True)
class Asset:
    """One band of one file (local path, URL, or GDAL VSI path)."""

    href: str
    band_index: int = 1
    """1-based band number inside the file."""
    scale: float = 1.0
    offset: float = 0.0
    """Stored value = raw * scale + offset (e.g. offset -1000 for S2 baseline >= 04.00)."""
    to_db: bool = False
    """The file holds linear power; convert to dB (10 log10) after reading."""


@dataclass(frozen=True)
class QualityAsset:
    """A per-pixel quality layer used to mask clouds."""

    href: str
    band_index: int = 1
    kind: Literal["scl", "cloud_mask"] = "cloud_mask"
    """``scl``: Sentinel-2 scene classification (0, 1, 3, 8, 9, 10 invalid);
    ``cloud_mask``: non-zero means cloud."""


SCL_INVALID = (0, 1, 3, 8, 9, 10)
"""SCL classes masked out: no data, saturated/defective, cloud shadow, cloud medium/high
probability, thin cirrus."""


@dataclass
class Item:
    id: str
    datetime: datetime
    modality: str
    assets: dict[str, Asset]
    """Canonical band name -> asset."""
    quality: QualityAsset | None = None
    bbox_wgs84: tuple[float, float, float, float] | None = None
    """Footprint bounds (lon/lat) used to skip items that cannot touch a window."""
    properties: dict[str, Any] = field(default_factory=dict)
    """``cloud_cover`` (percent), ``processing_baseline``, ``source`` ..."""

    def __post_init__(self) -> None:
        self.datetime = parse_time(self.datetime)

    def intersects(self, window: Window) -> bool:
        if self.bbox_wgs84 is None:
            return True
        from shapely.geometry import box

        return window.geometry_wgs84().intersects(box(*self.bbox_wgs84))

    def in_time(self, window: Window) -> bool:
        return window.start <= self.datetime < window.end

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "datetime": self.datetime.isoformat(),
            "modality": self.modality,
            "assets": {b: asdict(a) for b, a in self.assets.items()},
            "quality": asdict(self.quality) if self.quality else None,
            "bbox_wgs84": list(self.bbox_wgs84) if self.bbox_wgs84 else None,
            "properties": self.properties,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Item:
        return cls(
            id=d["id"],
            datetime=d["datetime"],
            modality=d["modality"],
            assets={b: Asset(**a) for b, a in d["assets"].items()},
            quality=QualityAsset(**d["quality"]) if d.get("quality") else None,
            bbox_wgs84=tuple(d["bbox_wgs84"]) if d.get("bbox_wgs84") else None,
            properties=d.get("properties") or {},
        )


class Source(Protocol):
    """Anything that lists the items of one modality that may cover a window."""

    modality: str

    def search(self, window: Window) -> list[Item]: ...

    def describe(self) -> dict[str, Any]: ...
