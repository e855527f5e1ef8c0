"""Reading a source raster onto a window's pixel grid, with the validity of every pixel.

The one place where pixels of a source file become pixels of a window. A ``WarpedVRT`` in the
window's CRS and grid asks GDAL for just the source blocks it needs (HTTP range requests on a
remote COG). A pixel is valid only where all of these hold:

- it lies inside the source's footprint: the VRT's alpha band, which GDAL's warper sets from
  the source's extent, its nodata value and its own mask or alpha band (a *masked* read of a
  ``WarpedVRT`` does not look at that alpha band when the source has no nodata value, so it is
  read explicitly; without it, pixels outside a scene came back as valid zeros);
- its value is not the source's nodata value;
- its value is finite.

GDAL decides footprint membership by pixel centre, so a window pixel counts as covered when
its centre falls inside the scene.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def is_nan(value: float | None) -> bool:
    return value is not None and isinstance(value, float) and value != value


def alpha_index(src: Any) -> int | None:
    """The 1-based band GDAL flags as alpha, if any."""
    from rasterio.enums import ColorInterp

    for i, ci in enumerate(src.colorinterp, start=1):
        if ci == ColorInterp.alpha:
            return i
    return None


def _as_data_bands(src: Any) -> Any:
    """``src`` re-declared through an in-memory GDAL VRT in which no band is alpha.

    GDAL flags the fourth band of a 4-band 8-bit RGB GeoTIFF as alpha by default, so an
    R, G, B, NIR file (NAIP) would have every NIR = 0 pixel (water) masked out. When that band is
    one we read as data, it is data."""
    from xml.sax.saxutils import escape

    import rasterio

    dtype_names = {
        "uint8": "Byte",
        "int8": "Int8",
        "uint16": "UInt16",
        "int16": "Int16",
        "uint32": "UInt32",
        "int32": "Int32",
        "float32": "Float32",
        "float64": "Float64",
    }
    bands = []
    for i, dtype in enumerate(src.dtypes, start=1):
        nodata = "" if src.nodata is None else f"<NoDataValue>{src.nodata!r}</NoDataValue>"
        bands.append(
            f'<VRTRasterBand dataType="{dtype_names[dtype]}" band="{i}">{nodata}'
            "<ColorInterp>Undefined</ColorInterp><SimpleSource>"
            f'<SourceFilename relativeToVRT="0">{escape(src.name)}</SourceFilename>'
            f"<SourceBand>{i}</SourceBand></SimpleSource></VRTRasterBand>"
        )
    t = src.transform
    xml = (
        f'<VRTDataset rasterXSize="{src.width}" rasterYSize="{src.height}">'
        f"<SRS>{escape(src.crs.to_wkt())}</SRS>"
        f"<GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>"
        + "".join(bands)
        + "</VRTDataset>"
    )
    return rasterio.open(xml)


def read_warped(
    src: Any,
    window: Any,
    indexes: list[int],
    *,
    resampling: Any,
    nodata: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Bands ``indexes`` (1-based) of the open rasterio dataset ``src`` on ``window``'s grid.

    Returns ([k, H, W] float64 values, [k, H, W] bool validity). ``nodata`` overrides the
    file's nodata value (for files that do not declare theirs). A band GDAL flags as alpha is
    the footprint when it is not read as data, and data when it is (``_as_data_bands``)."""
    from contextlib import ExitStack

    from rasterio.vrt import WarpedVRT

    nd = nodata if nodata is not None else src.nodata
    alpha = alpha_index(src)
    with ExitStack() as stack:
        if alpha is not None and alpha in indexes:
            src, alpha = stack.enter_context(_as_data_bands(src)), None
        kwargs: dict[str, Any] = dict(
            crs=window.crs,
            transform=window.transform,
            width=window.width,
            height=window.height,
            resampling=resampling,
        )
        if alpha is None:
            kwargs["add_alpha"] = True  # marks pixels outside the footprint (and nodata)
        if nd is not None:
            kwargs["src_nodata"] = nd  # nodata source pixels stay out of the resampling kernel
        vrt = stack.enter_context(WarpedVRT(src, **kwargs))
        raw = vrt.read(list(indexes))  # [k, H, W]
        inside = vrt.read(alpha or vrt.count) > 0  # the alpha band: [H, W]
    values = raw.astype(np.float64)
    valid = np.isfinite(values) & inside[None]
    if nd is not None and not is_nan(float(nd)):
        valid &= values != nd
    return values, valid


def read_masks(src: Any, indexes: list[int], **kwargs: Any) -> np.ndarray:
    """[k, h, w] bool validity of bands ``indexes`` from the file's own masks (nodata, internal
    mask or a real alpha band), where an alpha-flagged band read as data is not a mask."""
    alpha = alpha_index(src)
    if alpha is not None and alpha in indexes:
        raw = src.read(list(indexes), **kwargs)
        if src.nodata is None or is_nan(float(src.nodata)):
            return np.ones(raw.shape, bool)
        return raw != src.nodata
    return src.read_masks(list(indexes), **kwargs) > 0
