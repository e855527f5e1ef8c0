"""Where imagery comes from: local rasters and STAC catalogues, both producing ``Item``s."""

from earthplat.data.sources.base import Asset, Item, QualityAsset, Source
from earthplat.data.sources.local import LocalSource
from earthplat.data.sources.stac import StacSource

__all__ = ["Asset", "Item", "LocalSource", "QualityAsset", "Source", "StacSource"]
