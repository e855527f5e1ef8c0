"""Raster uploads: copy within a size limit, validate, then move into place.

Nothing is left behind on failure: the upload is written to a temporary file next to its
destination and only renamed into place once it is a readable raster with a CRS.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, BinaryIO

from labeling.services.errors import InvalidInputError, TooLargeError

CHUNK = 1 << 20


def _json_number(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return str(value).lower()  # "nan", "inf", "-inf"


def validate_raster(path: Path, *, filename: str) -> dict[str, Any]:
    """Facts about a raster file; ``InvalidInputError`` if it is not one or has no CRS."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                crs = src.crs
                info = {
                    "width": src.width,
                    "height": src.height,
                    "count": src.count,
                    "dtype": src.dtypes[0],
                    "bounds": list(src.bounds),
                    "driver": src.driver,
                    # NaN is not JSON (PostgreSQL rejects it): stored as the string "nan"
                    "nodata": _json_number(src.nodata),
                    "descriptions": [d or "" for d in src.descriptions],
                }
    except RasterioIOError:
        raise InvalidInputError(
            f"{filename!r} is not a raster GDAL can read",
            fix="upload a GeoTIFF (or another GDAL raster) file",
        ) from None
    if crs is None:
        raise InvalidInputError(
            f"{filename!r} has no coordinate reference system (CRS), so it cannot be placed "
            "on the map",
            fix="georeference it first (earthplat raster georef IN OUT --crs EPSG:N --bounds "
            "'[minx, miny, maxx, maxy]'), then upload OUT",
        )
    info["crs"] = crs.to_string()
    return info


def store_raster(stream: BinaryIO, *, filename: str, dest: Path, max_bytes: int) -> dict[str, Any]:
    """Copy ``stream`` to ``dest`` if it is a raster with a CRS of at most ``max_bytes``.
    Returns the raster facts; raises (and leaves no file) otherwise."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=".tif", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise TooLargeError(
                        f"{filename!r} is larger than the upload limit of {max_bytes / 2**20:g} MiB"
                    )
                out.write(chunk)
        if size == 0:
            raise InvalidInputError(f"{filename!r} is empty", fix="upload a GeoTIFF file")
        info = validate_raster(tmp, filename=filename)
        info["size_bytes"] = size
        tmp.replace(dest)
        return info
    finally:
        tmp.unlink(missing_ok=True)
