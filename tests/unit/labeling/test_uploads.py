"""Raster upload validation: nothing is left behind when refused."""

from __future__ import annotations

import io

import numpy as np
import pytest

from labeling.services.errors import InvalidInputError, TooLargeError
from labeling.services.uploads import store_raster


def _tiff(crs: str | None) -> bytes:
    import warnings

    import rasterio
    from affine import Affine
    from rasterio.errors import NotGeoreferencedWarning

    buf = io.BytesIO()
    profile = {"driver": "GTiff", "width": 16, "height": 16, "count": 2, "dtype": "uint16"}
    if crs:
        profile |= {"crs": crs, "transform": Affine(10, 0, 500000, 0, -10, 4200000)}
    with warnings.catch_warnings(), rasterio.MemoryFile() as mem:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with mem.open(**profile) as dst:
            dst.write(np.arange(512, dtype="uint16").reshape(2, 16, 16))
        buf.write(mem.read())
    return buf.getvalue()


def test_good_raster(tmp_path):
    dest = tmp_path / "u" / "a.tif"
    info = store_raster(
        io.BytesIO(_tiff("EPSG:32630")), filename="a.tif", dest=dest, max_bytes=10**6
    )
    assert info["crs"] == "EPSG:32630" and info["count"] == 2 and dest.is_file()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.tif"]


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"hello", InvalidInputError, "not a raster"),
        (b"", InvalidInputError, "empty"),
        (None, InvalidInputError, "no coordinate reference system"),
        (b"x" * 2000, TooLargeError, "upload limit"),
    ],
)
def test_refused_leaves_nothing(tmp_path, data, error, message):
    data = _tiff(None) if data is None else data
    dest = tmp_path / "u" / "a.tif"
    with pytest.raises(error, match=message):
        store_raster(io.BytesIO(data), filename="a.tif", dest=dest, max_bytes=1500 if
                     error is TooLargeError else 10**6)  # fmt: skip
    assert list(dest.parent.iterdir()) == []
