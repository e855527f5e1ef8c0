"""Per-window predictions as one mosaic over an area: one COG, one GeoJSON, one STAC Item.

Windows may lie in several UTM zones; the mosaic takes the CRS most of them use (or the one
asked for) at their resolution, and warps each window's COG onto that one grid (nearest
neighbour for class maps, bilinear for values), one window in memory at a time. Pixels no
window covers are nodata. The legend (``CLASSES`` tag and colormap), the band descriptions and
the model's tags come from the windows' COGs; the STAC Item repeats the windows' model (MLM)
fields and lists the mosaic and the merged features as assets.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from earthplat.inference.errors import InferenceError


def _grid(files: list[Path], crs: str | None, resolution: float | None):
    """(CRS, transform, width, height) of a grid covering every file: the CRS most files use
    (or ``crs``), their finest pixel size there (or ``resolution``)."""
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    metas = []
    for f in files:
        with rasterio.open(f) as src:
            metas.append((src.crs, src.bounds, abs(src.transform.a)))
    target = CRS.from_user_input(crs) if crs else Counter(m[0] for m in metas).most_common(1)[0][0]
    native = [r for c, _, r in metas if c == target] or [metas[0][2]]
    res = float(resolution or min(native))
    boxes = [transform_bounds(c, target, *b, densify_pts=21) for c, b, _ in metas]
    left = math.floor(min(b[0] for b in boxes) / res) * res
    top = math.ceil(max(b[3] for b in boxes) / res) * res
    width = max(1, math.ceil((max(b[2] for b in boxes) - left) / res))
    height = max(1, math.ceil((top - min(b[1] for b in boxes)) / res))
    return target, Affine(res, 0.0, left, 0.0, -res, top), width, height


def _empty(values: np.ndarray, nodata: float | None) -> np.ndarray:
    return np.isnan(values) if nodata is None or nodata != nodata else values == nodata


def mosaic_predictions(
    files: list[str | Path],
    out: str | Path,
    *,
    features: str | Path | None = None,
    crs: str | None = None,
    resolution: float | None = None,
) -> dict[str, Path]:
    """Mosaic per-window prediction COGs ``files`` into ``out`` (a COG); with ``features`` (a
    merged GeoJSON of the windows' features) and the windows' STAC Items beside their COGs,
    also ``OUT.item.json``. Returns the written files (``cog``, ``stac``)."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.shutil import copy as rio_copy
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds

    paths = [Path(f) for f in files]
    if not paths:
        raise InferenceError("no window prediction to mosaic")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    target, transform, width, height = _grid(paths, crs, resolution)
    with rasterio.open(paths[0]) as first:
        tags, descriptions = first.tags(), list(first.descriptions)
        nodata, count, dtype = first.nodata, first.count, first.dtypes[0]
        colormap = first.colormap(1) if tags.get("CLASSES") and count == 1 else None
    classes = bool(tags.get("CLASSES")) and count == 1
    resampling = Resampling.nearest if classes else Resampling.bilinear
    fill = np.nan if nodata is None else nodata
    block = 256 if min(width, height) >= 256 else 16
    plain_profile = dict(
        driver="GTiff", width=width, height=height, count=count, dtype=dtype, nodata=nodata,
        crs=target, transform=transform, tiled=True, blockxsize=block, blockysize=block,
        compress="DEFLATE", BIGTIFF="IF_SAFER",
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="earthplat-mosaic-", dir=out.parent) as tmp:
        plain = Path(tmp) / "plain.tif"
        with rasterio.open(plain, "w+", **plain_profile) as dst:
            for path in paths:  # one window in memory at a time
                with rasterio.open(path) as src:
                    box = transform_bounds(src.crs, target, *src.bounds, densify_pts=21)
                    win = from_bounds(*box, transform=transform).round_offsets().round_lengths()
                    win = win.intersection(Window(0, 0, width, height))
                    w, h = int(win.width), int(win.height)
                    with WarpedVRT(
                        src,
                        crs=target,
                        transform=dst.window_transform(win),
                        width=w,
                        height=h,
                        resampling=resampling,
                        src_nodata=src.nodata,
                        nodata=fill,
                    ) as vrt:
                        data = vrt.read()  # [count, h, w]
                have = dst.read(window=win)
                take = _empty(have, nodata) & ~_empty(data, nodata)
                dst.write(np.where(take, data, have), window=win)
            for i, d in enumerate(descriptions, start=1):
                if d:
                    dst.set_band_description(i, d)
            dst.update_tags(**tags, MOSAIC_OF=str(len(paths)))
            if colormap:
                dst.write_colormap(1, colormap)
        options: dict[str, Any] = dict(
            driver="COG",
            compress="DEFLATE",
            predictor=3 if np.dtype(dtype).kind == "f" else 2,
            overviews="AUTO",
            blocksize=256 if min(width, height) >= 512 else 128,
            resampling="NEAREST" if classes else "AVERAGE",
            BIGTIFF="IF_SAFER",
        )
        if max(width, height) > 64:
            options["overview_count"] = max(1, int(np.log2(max(width, height) / 64)))
        rio_copy(plain, out, **options)
    written = {"cog": out}
    items = [p.with_suffix(".item.json") for p in paths]
    items = [p for p in items if p.is_file()]
    if items:
        assets = {"mosaic": out} | ({"vector": Path(features)} if features else {})
        written["stac"] = _mosaic_item(out.with_suffix(".item.json"), assets, items, len(paths))
    return written


def _mosaic_item(path: Path, assets: dict[str, Path], items: list[Path], windows: int) -> Path:
    """A STAC Item for the mosaic: the union of the windows' footprints and times, and the
    model (MLM) fields of their Items."""
    import pystac
    import rasterio
    from shapely import union_all
    from shapely.geometry import mapping, shape

    parts = [json.loads(p.read_text()) for p in items]
    footprint = union_all([shape(p["geometry"]) for p in parts])
    starts = sorted(p["properties"]["start_datetime"] for p in parts)
    ends = sorted(p["properties"]["end_datetime"] for p in parts)
    first = parts[0]["properties"]
    props = {k: v for k, v in first.items() if k.startswith(("mlm:", "earthplat:task"))}
    with rasterio.open(assets["mosaic"]) as src:
        props |= {
            "proj:code": src.crs.to_string(),
            "proj:shape": [src.height, src.width],
            "proj:transform": list(src.transform)[:6],
        }
    props |= {
        "start_datetime": starts[0],
        "end_datetime": ends[-1],
        "created": datetime.now(UTC).isoformat(),
        "earthplat:windows": windows,
    }
    start = datetime.fromisoformat(starts[0])
    item = pystac.Item(
        path.stem.removesuffix(".item"),
        mapping(footprint),
        list(footprint.bounds),
        start,
        props,
        stac_extensions=parts[0].get("stac_extensions", []),
    )
    media = {".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
             ".geojson": "application/geo+json"}  # fmt: skip
    for key, asset in assets.items():
        href = (
            str(asset.relative_to(path.parent)) if asset.is_relative_to(path.parent) else str(asset)
        )
        item.add_asset(
            key, pystac.Asset(href=href, media_type=media.get(asset.suffix), roles=["data"])
        )
    path.write_text(json.dumps(item.to_dict(include_self_link=False), indent=1))
    return path
