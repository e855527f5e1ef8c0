"""Assemble finished chunks into a Cloud-Optimized GeoTIFF, one chunk in memory at a time.

The COG carries overviews (nearest for classes, average for values), nodata, band
descriptions, and for class maps a colormap plus the legend as JSON in the ``CLASSES`` tag
(value, label, colour: the spec's class schema), which GIS tools and the platform read.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from earthplat.inference.engine import ChunkResult, RasterFormat


def _rgba(color: str) -> tuple[int, int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255


def write_cog(
    path: str | Path,
    results: Iterable[ChunkResult],
    *,
    crs: Any,
    transform: Any,
    shape: tuple[int, int],
    fmt: RasterFormat,
    scale: int,
    classes: list[dict] | None = None,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write ``results`` (chunks on the output grid of ``shape``) as a COG at ``path``."""
    import rasterio
    from rasterio.shutil import copy as rio_copy
    from rasterio.windows import Window

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = shape
    block = 256 if min(height, width) >= 256 else 16 * max(1, min(height, width) // 16)
    profile = dict(
        driver="GTiff",
        width=width,
        height=height,
        count=fmt.count,
        dtype=fmt.dtype,
        nodata=fmt.nodata,
        crs=crs,
        transform=transform,
        tiled=True,
        blockxsize=max(block, 16),
        blockysize=max(block, 16),
        compress="DEFLATE",
        BIGTIFF="IF_SAFER",
    )
    with tempfile.TemporaryDirectory(prefix="earthplat-predict-", dir=path.parent) as tmp:
        plain = Path(tmp) / "plain.tif"
        with rasterio.open(plain, "w", **profile) as dst:
            for res in results:  # one chunk in memory at a time
                ch = res.chunk
                h, w = res.values.shape[1:]
                dst.write(res.values, window=Window(ch.col // scale, ch.row // scale, w, h))
            for i, d in enumerate(fmt.descriptions, start=1):
                dst.set_band_description(i, d)
            all_tags = dict(tags or {})
            if classes:
                all_tags["CLASSES"] = json.dumps(classes)
                if fmt.dtype in ("uint8", "uint16"):
                    dst.write_colormap(1, {int(c["value"]): _rgba(c["color"]) for c in classes})
            dst.update_tags(**all_tags)
        categorical = bool(classes) and fmt.count == 1
        options: dict[str, Any] = dict(
            driver="COG",
            compress="DEFLATE",
            predictor=3 if np.dtype(fmt.dtype).kind == "f" else 2,
            overviews="AUTO",
            blocksize=256 if min(shape) >= 512 else 128,
            resampling="NEAREST" if categorical else "AVERAGE",
            BIGTIFF="IF_SAFER",
        )
        if max(shape) > 64:  # small outputs still get at least one overview level
            options["overview_count"] = max(1, int(np.log2(max(shape) / 64)))
        rio_copy(plain, path, **options)
    return path
