"""Test rasters made from the real shared data (written to a test's tmp dir, never committed)."""

from __future__ import annotations

from pathlib import Path

import rasterio

SLOVENIA = "real/s2_slovenia_eolearn/s2_l1c_5dates_13bands.tif"
TWO_DATES = ["2015-07-11", "2015-08-20"]
FOUR = ["B02", "B03", "B04", "B08"]


def two_date_l2a_style(shared_data: Path, out: Path) -> Path:
    """Two dates x (B02, B03, B04, B08) of the real Slovenia stack as an 8-band GeoTIFF with no
    band descriptions, no nodata value and a Level-2A processing tag ("L2A-style": the values
    are the stack's L1C ones; what matters is that nothing in the file names its bands or
    dates, and its metadata says L2A)."""
    with rasterio.open(shared_data / SLOVENIA) as src:
        descriptions = list(src.descriptions)
        profile = src.profile
        index = [descriptions.index(f"{d}_{b}") + 1 for d in TWO_DATES for b in FOUR]
        data = src.read(index)
    profile.update(count=8, driver="GTiff", compress="deflate", nodata=None)
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(PROCESSING_LEVEL="Level-2A")
    return out
