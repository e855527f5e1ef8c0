"""Custom sensors from YAML files: a sensor the built-in registry lacks (an aerial camera, a
commercial constellation, a derived product) described once and used like any built-in modality.

A file holds one sensor (a mapping) or several (a list of mappings)::

    # my_drone.yaml
    name: drone_rgbn            # registry name: lowercase letters, digits, _
    description: DJI multispectral orthomosaics
    gsd_m: 0.1                  # metres; the default of every band
    dtype: uint16               # storage dtype of materialised layers
    nodata: 65535               # integer dtypes need one; null (NaN) only for float dtypes
    multitemporal: true         # a time series (default), or false for a static layer
    units: DN
    bands:                      # in file order; mean and std normalise (mean +/- 2 std -> 0..1)
      - {name: R, common_name: red, wavelength_um: 0.650, mean: 92.1, std: 41.0, aliases: [b1]}
      - {name: G, common_name: green, wavelength_um: 0.560, mean: 101.5, std: 38.2}
      - {name: B, common_name: blue, wavelength_um: 0.450, mean: 88.0, std: 35.9}
      - {name: NIR, common_name: nir, wavelength_um: 0.860, gsd_m: 0.2, mean: 120.3, std: 50.7}
    band_sets: [[R, G, B, NIR]] # optional; default: all bands in one set
    composites:                 # optional display presets; bands may be differences (A-B)
      - {name: true_color, bands: [R, G, B], ranges: [[0, 255], [0, 255], [0, 255]]}
      - {name: false_color, bands: [NIR, R, G], ranges: [0, 255]}   # one range for all three

Fields: ``name``, ``bands`` and ``dtype`` are required, and ``gsd_m`` unless every band has
its own. Per band: ``name`` (letters, digits, ``.``; no ``_``, ``-`` or spaces, because file band
descriptions are split at ``_``, ``:`` and spaces and composites use ``A-B``), ``mean`` and
``std`` (required, in stored units), ``common_name`` (STAC ``eo``), ``wavelength_um``
(micrometres), ``gsd_m`` and ``aliases``. Optional at the top: ``description``, ``units``,
``multitemporal``, ``band_sets``, ``composites``, ``family`` and ``product_ids`` (see
``earthplat.sensors.Modality``) and ``replace: true`` to replace a built-in modality of the
same name on purpose. Unknown keys are errors, so a typo never goes unnoticed.

``earthplat.data.band_stats.sensor_yaml`` writes such a file from statistics computed over
your own rasters (``band_stats``). Register files by listing them (or their directories) in the
``EARTHPLAT_SENSORS`` environment variable, separated by ``os.pathsep``, or in Python with
``earthplat.sensors.register_sensor_file``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, NoReturn

from earthplat.errors import SensorError, SensorFileError
from earthplat.sensors.registry import (
    _BUILTIN,
    SENSORS_ENV,
    STORAGE_DTYPES,
    check_modality,
    dtype_range,
)
from earthplat.sensors.types import Band, Composite, Modality

TOP_KEYS = (
    "name",
    "description",
    "gsd_m",
    "dtype",
    "nodata",
    "multitemporal",
    "units",
    "bands",
    "band_sets",
    "composites",
    "family",
    "product_ids",
    "replace",
)
BAND_KEYS = ("name", "common_name", "wavelength_um", "gsd_m", "mean", "std", "aliases")
COMPOSITE_KEYS = ("name", "bands", "ranges", "description")
_SENSOR_NAME = re.compile(r"[a-z][a-z0-9_]*")
_BAND_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.]*")


class _Fields:
    """Typed access to one YAML mapping, with errors that name the file and the field."""

    def __init__(self, data: Any, source: str, where: str, allowed: tuple[str, ...]) -> None:
        self.source, self.where = source, where
        if not isinstance(data, dict):
            self.fail("", f"must be a mapping of {', '.join(allowed)}, got {type(data).__name__}")
        unknown = [k for k in data if k not in allowed]
        if unknown:
            self.fail(
                "", f"unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(allowed)}"
            )
        self.data = data

    def fail(self, key: str, message: str) -> NoReturn:
        field = ".".join(p for p in (self.where, key) if p) or "file"
        raise SensorFileError(f"{self.source}: {field}: {message}")

    def get(self, key: str, kind: str, default: Any = None, *, required: bool = False) -> Any:
        if self.data.get(key) is None:
            if required:
                self.fail(key, "is missing")
            return default
        value = self.data[key]
        ok = {
            "str": isinstance(value, str) and bool(value.strip() or not required),
            "bool": isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "list": isinstance(value, list),
        }[kind]
        if kind == "number" and ok and not math.isfinite(value) and key != "nodata":
            ok = False
        if not ok:
            self.fail(key, f"must be a {'string' if kind == 'str' else kind}, got {value!r}")
        return value.strip() if kind == "str" else value

    def names(self, key: str, pattern: re.Pattern[str], hint: str) -> tuple[str, ...]:
        values = self.get(key, "list", [])
        for v in values:
            if not isinstance(v, str) or not pattern.fullmatch(v):
                self.fail(key, f"{v!r} is not a valid name ({hint})")
        return tuple(values)


def _band(data: Any, source: str, index: int, default_gsd: float | None) -> Band:
    label = data.get("name") if isinstance(data, dict) else None
    where = f"bands[{index}]" + (f" ({label})" if isinstance(label, str) else "")
    f = _Fields(data, source, where, BAND_KEYS)
    name = f.get("name", "str", required=True)
    if not _BAND_NAME.fullmatch(name):
        f.fail("name", f"{name!r} must be letters, digits and '.' (no '_', '-' or spaces)")
    common = f.get("common_name", "str")
    if common is not None and not _BAND_NAME.fullmatch(common):
        f.fail("common_name", f"{common!r} is not a STAC common name (red, nir08, swir16...)")
    wavelength = f.get("wavelength_um", "number")
    if wavelength is not None and not 0 < wavelength <= 30:
        f.fail("wavelength_um", f"{wavelength} is not in micrometres (0.865, not 865 nm)")
    gsd = f.get("gsd_m", "number", default_gsd)
    if gsd is None:
        f.fail("gsd_m", "is missing (set it here or once at the top of the file)")
    if gsd <= 0:
        f.fail("gsd_m", f"must be positive, got {gsd}")
    mean = f.get("mean", "number", required=True)
    std = f.get("std", "number", required=True)
    if std <= 0:
        f.fail("std", f"must be positive, got {std}")
    aliases = f.names("aliases", _BAND_NAME, "letters, digits and '.'")
    return Band(name, common, wavelength, float(gsd), float(mean), float(std), aliases)


def _composite(data: Any, source: str, index: int, m: Modality) -> Composite:
    f = _Fields(data, source, f"composites[{index}]", COMPOSITE_KEYS)
    name = f.get("name", "str", required=True)
    bands = f.get("bands", "list", required=True)
    if len(bands) != 3 or not all(isinstance(b, str) for b in bands):
        f.fail("bands", f"must be three band names (or differences A-B), got {bands!r}")
    try:
        canonical = tuple("-".join(m.band(p).name for p in b.split("-")) for b in bands)
    except SensorError as err:
        f.fail("bands", str(err))
    ranges = f.get("ranges", "list", required=True)
    if len(ranges) == 2 and all(isinstance(r, int | float) for r in ranges):
        ranges = [ranges] * 3
    pairs = []
    for r in ranges:
        if not (isinstance(r, list) and len(r) == 2 and all(isinstance(x, int | float) for x in r)):
            f.fail("ranges", f"must be [low, high] or three of them, got {ranges!r}")
        if not r[0] < r[1]:
            f.fail("ranges", f"low must be below high, got {r!r}")
        pairs.append((float(r[0]), float(r[1])))
    if len(pairs) != 3:
        f.fail("ranges", f"must be [low, high] or three of them, got {ranges!r}")
    return Composite(name, canonical, tuple(pairs), f.get("description", "str", ""))


def parse_sensor(data: Any, source: str) -> tuple[Modality, bool]:
    """One sensor mapping -> (modality, replace). ``source`` names the file in errors."""
    f = _Fields(data, source, "", TOP_KEYS)
    name = f.get("name", "str", required=True)
    if not _SENSOR_NAME.fullmatch(name):
        f.fail("name", f"{name!r} must be lowercase letters, digits and _ (e.g. 'my_sensor')")
    replace = f.get("replace", "bool", False)
    if name in _BUILTIN and not replace:
        f.fail(
            "name",
            f"{name!r} is a built-in modality; choose another name, or add "
            "`replace: true` to replace the built-in on purpose",
        )
    dtype = f.get("dtype", "str", required=True)
    if dtype not in STORAGE_DTYPES:
        f.fail("dtype", f"{dtype!r} is not one of {', '.join(STORAGE_DTYPES)}")
    nodata = f.get("nodata", "number")
    rng = dtype_range(dtype)
    if nodata is not None and math.isnan(nodata):
        nodata = None
    if rng is not None:
        if nodata is None:
            f.fail(
                "nodata",
                f"integer dtype {dtype} needs a nodata value that valid pixels "
                f"never take (e.g. {rng[1]}); null is for float dtypes, where NaN marks "
                "nodata",
            )
        if nodata != int(nodata) or not rng[0] <= nodata <= rng[1]:
            f.fail("nodata", f"{nodata} does not fit {dtype} ({rng[0]}..{rng[1]})")
    gsd = f.get("gsd_m", "number")
    raw_bands = f.get("bands", "list", required=True)
    if not raw_bands:
        f.fail("bands", "is empty; list at least one band")
    bands = tuple(_band(b, source, i, gsd) for i, b in enumerate(raw_bands))
    seen: dict[str, int] = {}
    for i, b in enumerate(bands):
        if b.name.upper() in seen:
            f.fail(
                "bands",
                f"duplicate band name {b.name!r} (bands[{seen[b.name.upper()]}] and bands[{i}])",
            )
        seen[b.name.upper()] = i
    m = Modality(
        name=name,
        bands=bands,
        band_sets=(tuple(b.name for b in bands),),
        multitemporal=f.get("multitemporal", "bool", True),
        units=f.get("units", "str", ""),
        dtype=dtype,
        nodata=nodata,
        description=f.get("description", "str", ""),
        family=f.get("family", "str", "").lower(),
        product_ids=f.names("product_ids", re.compile(r"\S+"), "no spaces"),
    )
    raw_sets = f.get("band_sets", "list")
    if raw_sets is not None:
        try:
            sets = tuple(m.canonical(s) for s in raw_sets if isinstance(s, list) and s)
        except SensorError as err:
            f.fail("band_sets", str(err))
        if len(sets) != len(raw_sets):
            f.fail(
                "band_sets", f"must be a list of non-empty lists of band names, got {raw_sets!r}"
            )
        m = _replace(m, band_sets=sets)
    composites = f.get("composites", "list", [])
    m = _replace(m, composites=tuple(_composite(c, source, i, m) for i, c in enumerate(composites)))
    try:
        check_modality(m)
    except SensorFileError:
        raise
    except SensorError as err:
        raise SensorFileError(f"{source}: {err}") from err
    return m, replace


def _replace(m: Modality, **changes: Any) -> Modality:
    from dataclasses import replace

    return replace(m, **changes)


def read_sensor_file(path: str | Path) -> list[tuple[Modality, bool]]:
    """The (modality, replace) pairs of a sensor file, validated."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise SensorFileError(f"{p}: sensor file does not exist (or is not a file)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SensorFileError(f"{p}: cannot read the sensor file ({err})") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SensorFileError(f"{p}: not valid YAML: {err}") from err
    items = data if isinstance(data, list) else [data]
    if data is None or not items:
        raise SensorFileError(f"{p}: empty; it must describe a sensor (see earthplat.sensors.file)")
    pairs = [
        parse_sensor(d, str(p) if len(items) == 1 else f"{p} [{i}]") for i, d in enumerate(items)
    ]
    names = [m.name for m, _ in pairs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SensorFileError(f"{p}: sensor {', '.join(dup)} is described more than once")
    return pairs


def load_sensor_file(path: str | Path) -> list[Modality]:
    """The modalities a sensor file describes, validated but not registered."""
    return [m for m, _ in read_sensor_file(path)]


def sensor_paths(value: str) -> list[Path]:
    """The sensor files an ``EARTHPLAT_SENSORS`` value names: files, and the ``*.yaml``/``*.yml``
    files of directories (sorted), in the order given."""
    paths: list[Path] = []
    for entry in (e.strip() for e in value.split(os.pathsep)):
        if not entry:
            continue
        p = Path(entry).expanduser()
        if p.is_dir():
            paths += sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file())
        elif p.is_file():
            paths.append(p)
        else:
            raise SensorFileError(
                f"{SENSORS_ENV} lists {entry}, which does not exist; fix the path or remove it"
            )
    return paths
