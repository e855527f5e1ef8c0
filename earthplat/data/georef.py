"""Give a raster without georeferencing a CRS and a transform (rasterio only; GDAL's
command-line tools such as ``gdal_translate -a_srs -a_ullr`` are not needed).

Patches cut out by benchmark converters often lose their georeferencing (the GEO-Bench NAIP
tiles have none). ``georeference`` writes a copy with the CRS and a grid given by its bounds or
its affine transform; everything else is kept: every band, the dtype, band descriptions, tags
(dataset and per band), scales, offsets, units, the nodata value (or a new one) and an internal
mask. The copy is a tiled (256 x 256), deflate-compressed GeoTIFF.

Colour interpretation: RGB stays RGB. A band flagged alpha is kept as alpha only when it is a
real mask (see ``earthplat.data.band_stats.alpha_band``); one whose description names a data band
(the NIR of the GEO-Bench NAIP tiles, flagged alpha by GDAL's 4-band default) becomes an ordinary
band, so that no reader takes NIR 0 (water) for "outside the image".
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

from earthplat.errors import DataError

_TILE = 256
_CHUNK = 2048
"""Pixels per side of the windows copied at a time (bounded memory for big rasters)."""


def georeference(
    src: str,
    dst: str,
    *,
    crs: str,
    bounds: tuple[float, float, float, float] | None = None,
    transform: list[float] | None = None,
    nodata: float | None = None,
    overwrite: bool = False,
) -> str:
    """Write ``dst``, a copy of ``src`` placed in ``crs``; returns ``dst``.

    Give exactly one of ``bounds`` (minx, miny, maxx, maxy of the whole raster, in ``crs`` units;
    north up) or ``transform`` (the six affine coefficients a, b, c, d, e, f in rasterio order:
    x = a * col + b * row + c, y = d * col + e * row + f). ``nodata`` replaces the file's nodata
    value (it must fit the dtype). An existing ``dst`` is replaced only with ``overwrite``.
    """
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.enums import ColorInterp, MaskFlags
    from rasterio.errors import CRSError, NotGeoreferencedWarning, RasterioIOError
    from rasterio.transform import from_bounds
    from rasterio.windows import Window

    from earthplat.data.band_stats import alpha_band

    src_path, dst_path = Path(src), Path(dst)
    if not src_path.exists():
        raise DataError(f"{src} does not exist")
    if dst_path.resolve() == src_path.resolve():
        raise DataError(f"the output {dst} is the input; write the copy to another file")
    if dst_path.exists() and not overwrite:
        raise DataError(f"{dst} exists; choose another output or overwrite it on purpose")
    if (bounds is None) == (transform is None):
        raise DataError(
            "give exactly one of bounds (minx miny maxx maxy in the CRS) and transform "
            "(a b c d e f)"
        )
    try:
        target_crs = CRS.from_user_input(crs)
    except (CRSError, ValueError) as err:
        raise DataError(
            f"{crs!r} is not a CRS rasterio knows ({err}); give e.g. EPSG:32618, or a WKT or "
            "PROJ string"
        ) from err
    try:
        with warnings.catch_warnings():  # that the input has no georeferencing is the point
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            reader = rasterio.open(src_path)
    except RasterioIOError as err:
        raise DataError(f"{src}: not a raster rasterio can read ({err})") from err

    with reader:
        if bounds is not None:
            affine = _from_bounds(bounds, target_crs, reader.width, reader.height, from_bounds)
        else:
            affine = _from_coefficients(transform, Affine)
        if nodata is not None:
            _check_nodata(nodata, reader.dtypes[0], np)
        alpha = alpha_band(reader)
        ci = reader.colorinterp
        rgb = reader.count >= 3 and tuple(ci[:3]) == (
            ColorInterp.red,
            ColorInterp.green,
            ColorInterp.blue,
        )
        first_extra = 4 if rgb else 2
        flags = reader.mask_flag_enums[0]
        internal_mask = MaskFlags.per_dataset in flags and MaskFlags.alpha not in flags
        profile = dict(
            driver="GTiff",
            width=reader.width,
            height=reader.height,
            count=reader.count,
            dtype=reader.dtypes[0],
            crs=target_crs,
            transform=affine,
            nodata=reader.nodata if nodata is None else nodata,
            tiled=True,
            blockxsize=_TILE,
            blockysize=_TILE,
            compress="deflate",
            photometric="RGB" if rgb else "MINISBLACK",
            alpha="YES" if alpha == first_extra else "UNSPECIFIED",
            BIGTIFF="IF_SAFER",
        )
        dst_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst_path.with_name(f".{dst_path.name}.{os.getpid()}.tmp")
        try:
            with rasterio.open(tmp, "w", **profile) as out:
                for row in range(0, reader.height, _CHUNK):
                    for col in range(0, reader.width, _CHUNK):
                        w = Window(
                            col,
                            row,
                            min(_CHUNK, reader.width - col),
                            min(_CHUNK, reader.height - row),
                        )
                        out.write(reader.read(window=w), window=w)
                        if internal_mask:
                            out.write_mask(reader.read_masks(1, window=w), window=w)
                for i in range(1, reader.count + 1):
                    if reader.descriptions[i - 1]:
                        out.set_band_description(i, reader.descriptions[i - 1])
                    if reader.units[i - 1]:
                        out.set_band_unit(i, reader.units[i - 1])
                    band_tags = reader.tags(i)
                    if band_tags:
                        out.update_tags(i, **band_tags)
                out.scales, out.offsets = reader.scales, reader.offsets
                out.update_tags(**reader.tags())
            os.replace(tmp, dst_path)
        finally:
            if tmp.exists():
                tmp.unlink()
    return str(dst_path)


def _from_bounds(bounds, crs, width: int, height: int, from_bounds):
    values = _numbers(bounds, 4, "bounds", "minx miny maxx maxy")
    minx, miny, maxx, maxy = values
    if not (minx < maxx and miny < maxy):
        raise DataError(
            f"bounds {list(values)} must be minx miny maxx maxy with minx < maxx and miny < maxy"
        )
    if crs.is_geographic and not (minx >= -180 and maxx <= 360 and miny >= -90 and maxy <= 90):
        raise DataError(
            f"bounds {list(values)} are not degrees, but {crs.to_string()} is geographic; give "
            "bounds in its longitude/latitude, or the projected CRS they belong to"
        )
    return from_bounds(minx, miny, maxx, maxy, width, height)


def _from_coefficients(transform, Affine):
    a, b, c, d, e, f = _numbers(transform, 6, "transform", "a b c d e f")
    if a * e - b * d == 0:
        raise DataError(f"transform {[a, b, c, d, e, f]} is degenerate (pixel size 0)")
    return Affine(a, b, c, d, e, f)


def _numbers(values, n: int, what: str, spelled: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise DataError(f"{what} must be {n} numbers ({spelled}), got {values!r}") from err
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise DataError(f"{what} must be {n} finite numbers ({spelled}), got {values!r}")
    return out


def _check_nodata(nodata: float, dtype: str, np) -> None:
    kind = np.dtype(dtype)
    if np.issubdtype(kind, np.integer):
        info = np.iinfo(kind)
        if math.isnan(nodata) or nodata != int(nodata) or not info.min <= nodata <= info.max:
            raise DataError(
                f"nodata {nodata} does not fit the raster's {dtype} values ({info.min}..{info.max})"
            )
