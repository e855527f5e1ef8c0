"""Per-band statistics of rasters, and the custom-sensor YAML made from them.

``band_stats`` gives the numbers a sensor definition needs (mean and std for the OlmoEarth
normalisation, value range and 2/98 percentiles for display) over every valid pixel of one or
more files. ``sensor_yaml`` turns them into a sensor file (format: ``earthplat.sensors.file``).

Which pixels are valid: not the file's nodata value, finite, and inside the file's mask when the
file has a real one (an internal mask band, or an alpha band). A band flagged as alpha whose
description names a data band is data, not a mask: the GEO-Bench NAIP tiles carry their NIR band
that way (GDAL's default for a 4-band 8-bit GeoTIFF), and taking it as a mask would drop every
pixel with NIR 0 (water). See ``alpha_band``.

Big files are read decimated (GDAL picks every n-th pixel, using overviews where present) so
that about ``sample_pixels`` pixels are read in all, shared between files by their size; when
more valid pixels than that remain, a seeded random sample of them is kept.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from earthplat.errors import DataError

_ALPHA_DESCRIPTIONS = ("", "a", "alpha", "mask", "alpha mask", "transparency")


@dataclass(frozen=True)
class BandStats:
    """Statistics of one band over the valid pixels of all files."""

    name: str
    """Band name: given, the files' band description, or ``B1``..``Bn``."""
    mean: float
    """Mean of the valid pixels, in stored units."""
    std: float
    """Population standard deviation (ddof 0)."""
    min: float
    """Smallest valid value."""
    max: float
    """Largest valid value."""
    p02: float
    """2nd percentile (linear interpolation): a robust display minimum."""
    p98: float
    """98th percentile: a robust display maximum."""
    count: int
    """Valid pixels the statistics were computed from (after decimation and sampling)."""


def alpha_band(src: Any, n_names: int | None = None) -> int | None:
    """The 1-based index of the band of an open rasterio dataset that is a real alpha mask, or
    ``None``. A band counts as one when GDAL flags it alpha and its description is empty or says
    alpha/mask, unless ``n_names`` (the number of band names a caller gave) equals the band
    count, which says every band is data."""
    from rasterio.enums import ColorInterp

    if n_names is not None and n_names == src.count:
        return None
    for i, ci in enumerate(src.colorinterp, start=1):
        desc = (src.descriptions[i - 1] or "").strip().lower()
        if ci == ColorInterp.alpha and desc in _ALPHA_DESCRIPTIONS:
            return i
    return None


def _uses_mask(src: Any, alpha: int | None) -> bool:
    """Whether ``read_masks`` says more than the nodata value does (internal mask or alpha)."""
    from rasterio.enums import MaskFlags

    flags = src.mask_flag_enums[0]
    if MaskFlags.per_dataset not in flags:
        return False
    return MaskFlags.alpha not in flags or alpha is not None


def band_stats(
    paths: list[str],
    *,
    bands: list[str] | None = None,
    sample_pixels: int = 1_000_000,
    seed: int = 0,
) -> list[BandStats]:
    """Statistics per band over the valid pixels of ``paths`` (all with the same band count).

    ``bands`` names the bands in file order; without it the band descriptions of the files are
    used (they must agree), else ``B1``..``Bn``. Reads about ``sample_pixels`` pixels in all
    (decimated reads), then keeps a random sample (``seed``) of at most that many valid ones.
    """
    import numpy as np
    from rasterio.enums import Resampling
    from rasterio.errors import RasterioIOError

    if not paths:
        raise DataError("no rasters given; pass at least one file")
    if sample_pixels < 1:
        raise DataError(f"sample_pixels must be at least 1, got {sample_pixels}")
    infos = []
    for path in paths:
        if not Path(path).exists() and "://" not in path and not path.startswith("/vsi"):
            raise DataError(f"{path} does not exist")
        try:
            with _open(path) as src:
                alpha = alpha_band(src, len(bands) if bands else None)
                indexes = [i for i in range(1, src.count + 1) if i != alpha]
                descs = tuple(src.descriptions[i - 1] for i in indexes)
                infos.append((path, indexes, descs, src.width * src.height))
        except RasterioIOError as err:
            raise DataError(f"{path}: not a raster rasterio can read ({err})") from err
    counts = {len(ix) for _, ix, _, _ in infos}
    if len(counts) > 1:
        listing = ", ".join(f"{Path(p).name}: {len(ix)}" for p, ix, _, _ in infos)
        raise DataError(
            f"the files have different band counts ({listing}); give files of one "
            "sensor, with the bands in the same order"
        )
    n = counts.pop()
    names = _band_names(infos, bands, n)

    total = sum(px for *_, px in infos)
    values: list[list[Any]] = [[] for _ in range(n)]
    for path, indexes, _, px in infos:
        budget = max(1, math.ceil(sample_pixels * px / total))
        with _open(path) as src:
            step = max(1, math.ceil(math.sqrt(px / budget)))
            shape = (math.ceil(src.height / step), math.ceil(src.width / step))
            kw = dict(out_shape=(len(indexes), *shape), resampling=Resampling.nearest)
            data = src.read(indexes, **kw)  # [C, h, w]
            valid = np.ones(data.shape, dtype=bool)
            if src.nodata is not None and not math.isnan(src.nodata):
                valid &= data != np.asarray(src.nodata).astype(data.dtype)
            if np.issubdtype(data.dtype, np.floating):
                valid &= np.isfinite(data)
            if _uses_mask(src, alpha_band(src, len(bands) if bands else None)):
                valid &= src.read_masks(indexes, **kw) > 0
            for c in range(n):
                values[c].append(data[c][valid[c]])

    rng = np.random.default_rng(seed)
    out = []
    for c, name in enumerate(names):
        v = np.concatenate(values[c]).astype(np.float64)
        if v.size == 0:
            raise DataError(
                f"band {name} has no valid pixel in {', '.join(paths)} (all nodata, "
                "masked or NaN); check the files' nodata value and mask"
            )
        if v.size > sample_pixels:
            v = rng.choice(v, size=sample_pixels, replace=False)
        p02, p98 = np.percentile(v, [2, 98])
        out.append(
            BandStats(
                name=name,
                mean=float(v.mean()),
                std=float(v.std()),
                min=float(v.min()),
                max=float(v.max()),
                p02=float(p02),
                p98=float(p98),
                count=int(v.size),
            )
        )
    return out


@contextmanager
def _open(path: str) -> Iterator[Any]:
    """rasterio.open, quiet about missing georeferencing (statistics do not need it)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            yield src


def _band_names(infos: list[tuple], bands: list[str] | None, n: int) -> list[str]:
    if bands is not None:
        if len(bands) != n:
            raise DataError(
                f"{len(bands)} band names given ({', '.join(bands)}) but the files "
                f"have {n} bands; give one name per band, in file order"
            )
        if len({b.upper() for b in bands}) != len(bands):
            raise DataError(f"band names repeat: {', '.join(bands)}; give each band its own name")
        return list(bands)
    described = {descs for _, _, descs, _ in infos}
    first = infos[0][2]
    if len(described) > 1:
        a = next(p for p, _, d, _ in infos if d == first)
        b, other = next((p, d) for p, _, d, _ in infos if d != first)
        raise DataError(
            f"the files name their bands differently ({Path(a).name}: {list(first)}, "
            f"{Path(b).name}: {list(other)}); give the band names explicitly"
        )
    if all(first) and len({d.upper() for d in first}) == n:
        return [d.strip() for d in first]
    return [f"B{i}" for i in range(1, n + 1)]


def sensor_yaml(
    name: str,
    stats: list[BandStats],
    *,
    gsd_m: float,
    dtype: str,
    nodata: float | None,
    multitemporal: bool = True,
    description: str = "",
) -> str:
    """A custom-sensor YAML file (see ``earthplat.sensors.file``) for bands with these statistics.

    Refuses what would store wrong data: a ``dtype`` that cannot hold the observed values, an
    integer ``dtype`` without ``nodata``, and a ``nodata`` inside a band's observed range (a
    valid pixel would then read as nodata: e.g. nodata 0 for NAIP, whose NIR is 0 over water).
    The text is checked by parsing it back. Fill in ``common_name``/``wavelength_um`` by hand.
    """
    import yaml

    from earthplat.sensors import STORAGE_DTYPES, dtype_range
    from earthplat.sensors.file import parse_sensor

    if not stats:
        raise DataError("no band statistics given; compute them with band_stats(paths)")
    if dtype not in STORAGE_DTYPES:
        raise DataError(f"dtype {dtype!r} is not one of {', '.join(STORAGE_DTYPES)}")
    lo, hi = min(s.min for s in stats), max(s.max for s in stats)
    rng = dtype_range(dtype)
    if rng is not None:
        if lo < rng[0] or hi > rng[1]:
            raise DataError(
                f"the bands range over {lo:g}..{hi:g}, which {dtype} "
                f"({rng[0]}..{rng[1]}) cannot store; choose a wider dtype"
            )
        if nodata is None:
            free = rng[1] if hi < rng[1] else rng[0] if lo > rng[0] else None
            hint = f" (e.g. {free})" if free is not None else "; choose a wider dtype"
            raise DataError(
                f"integer dtype {dtype} needs a nodata value that valid pixels never take{hint}"
            )
    if nodata is not None and not math.isnan(nodata):
        inside = [s.name for s in stats if s.min <= nodata <= s.max]
        if inside:
            raise DataError(
                f"nodata {nodata:g} lies inside the observed values of band(s) "
                f"{', '.join(inside)}, so valid pixels would read as nodata; choose a "
                f"value outside {lo:g}..{hi:g}"
            )
    doc: dict[str, Any] = {"name": name}
    if description:
        doc["description"] = description
    doc |= {
        "gsd_m": float(gsd_m),
        "dtype": dtype,
        "nodata": None if nodata is None or math.isnan(nodata) else _num(nodata),
        "multitemporal": bool(multitemporal),
        "bands": [
            {
                "name": s.name,
                "common_name": None,
                "wavelength_um": None,
                "mean": _num(s.mean),
                "std": _num(s.std),
            }
            for s in stats
        ],
    }
    ranges = "\n".join(
        f"#   {s.name}: min {s.min:g}, p02 {s.p02:g}, p98 {s.p98:g}, max {s.max:g} "
        f"({s.count} pixels)"
        for s in stats
    )
    header = (
        "# Custom sensor for earthplat (format: earthplat.sensors.file), written by sensor_yaml\n"
        "# from band_stats. mean/std normalise each band (mean +/- 2 std -> 0..1).\n"
        "# Observed values (useful for composites: ranges [p02, p98]):\n"
        f"{ranges}\n"
    )
    text = header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)
    parse_sensor(yaml.safe_load(text), f"<sensor_yaml {name}>")
    return text


def _num(x: float) -> float | int:
    x = float(x)
    return int(x) if x.is_integer() else round(x, 4)
