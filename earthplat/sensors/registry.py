"""The registry itself: the built-in modalities plus custom sensors, lookups, and normalisation
(see ``earthplat.sensors``)."""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from earthplat.sensors.builtin import (
    CANOPY_HEIGHT,
    CDL,
    DEM,
    LABEL,
    LANDSAT,
    NAIP,
    OPENSTREETMAP,
    SENTINEL1,
    SENTINEL2_L1C,
    SENTINEL2_L2A,
    WORLDCEREAL,
    WORLDCOVER,
)
from earthplat.sensors.types import Modality

# --- The registry -----------------------------------------------------------------------------
_BUILTIN: dict[str, Modality] = {
    m.name: m
    for m in (
        SENTINEL2_L2A,
        SENTINEL2_L1C,
        SENTINEL1,
        LANDSAT,
        NAIP,
        WORLDCOVER,
        DEM,
        OPENSTREETMAP,
        CANOPY_HEIGHT,
        WORLDCEREAL,
        CDL,
        LABEL,
    )
}
_SHORTHANDS = {
    "s2": "sentinel2_l2a",
    "s2_l2a": "sentinel2_l2a",
    "s2_l1c": "sentinel2_l1c",
    "s1": "sentinel1",
    "landsat8": "landsat",
    "landsat9": "landsat",
}
SENSORS_ENV = "EARTHPLAT_SENSORS"
"""Environment variable naming custom-sensor YAML files, or directories of ``*.yaml``/``*.yml``,
separated by ``os.pathsep``; they are registered on the first registry lookup."""

_custom: dict[str, Modality] = {}
_custom_source: dict[str, str] = {}
_env_loaded = False
_env_loading = False
_lock = threading.RLock()

_INT_RANGES = {
    "uint8": (0, 2**8 - 1),
    "int8": (-(2**7), 2**7 - 1),
    "uint16": (0, 2**16 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint32": (0, 2**32 - 1),
    "int32": (-(2**31), 2**31 - 1),
}
STORAGE_DTYPES = (*_INT_RANGES, "float32", "float64")
"""The dtypes a modality can be materialised in."""


def dtype_range(dtype: str) -> tuple[float, float] | None:
    """(min, max) of an integer storage dtype; ``None`` for float dtypes."""
    return _INT_RANGES.get(dtype)


def _load_env_sensors() -> None:
    """Register the sensors of ``EARTHPLAT_SENSORS`` once, all or none of them. Other threads
    wait for the load; a failed load is retried (and fails again) on the next lookup, so a
    process never carries on silently without its custom sensors."""
    global _env_loaded, _env_loading
    if _env_loaded:
        return
    with _lock:
        if _env_loaded or _env_loading:  # loading: this thread re-entered while loading
            return
        value = os.environ.get(SENSORS_ENV, "")
        if not value.strip():
            _env_loaded = True
            return
        from earthplat.errors import EarthplatError
        from earthplat.sensors.file import read_sensor_file, sensor_paths

        _env_loading = True
        added: list[str] = []
        try:
            for path in sensor_paths(value):
                for m, replace in read_sensor_file(path):
                    _register(m, replace=replace, source=str(path))
                    added.append(m.name)
            _env_loaded = True
        except BaseException as err:
            for name in added:
                _custom.pop(name, None)
                _custom_source.pop(name, None)
            if isinstance(err, EarthplatError):
                raise type(err)(f"{SENSORS_ENV}={value!r}: {err}") from err
            raise
        finally:
            _env_loading = False


def _register(m: Modality, *, replace: bool, source: str | None) -> None:
    from earthplat.errors import SensorError

    check_modality(m)
    where = f" (from {source})" if source else ""
    if m.name in _SHORTHANDS:
        raise SensorError(
            f"modality name {m.name!r}{where} is a shorthand for {_SHORTHANDS[m.name]}; "
            "choose another name"
        )
    if not replace:
        if m.name in _BUILTIN and _BUILTIN[m.name] != m:
            raise SensorError(
                f"modality {m.name!r}{where} is a built-in modality; choose another name, or "
                "replace the built-in on purpose (`replace: true` in the sensor file, "
                "register_modality(..., replace=True) in Python)"
            )
        old = _custom.get(m.name)
        if old is not None and old != m:
            before = _custom_source.get(m.name)
            raise SensorError(
                f"a different custom modality {m.name!r} is already registered"
                + (f" from {before}" if before else "")
                + (f"; this one comes from {source}" if source else "")
                + "; give one of them another name, or replace it on purpose (replace=True)"
            )
    with _lock:
        _custom[m.name] = m
        if source:
            _custom_source[m.name] = source


def register_modality(m: Modality, *, replace: bool = False) -> None:
    """Add a custom modality to the registry, after checking it (``check_modality``).

    A name that a built-in modality (or another custom one) already has is refused unless
    ``replace``; registering the same modality twice is a no-op."""
    _load_env_sensors()
    _register(m, replace=replace, source=None)


def register_sensor_file(path: str | Path) -> list[Modality]:
    """Load a custom-sensor YAML file (see ``earthplat.sensors.file``) and register its sensors,
    honouring each one's ``replace``; returns them."""
    _load_env_sensors()
    from earthplat.sensors.file import read_sensor_file

    pairs = read_sensor_file(path)
    for m, replace in pairs:
        _register(m, replace=replace, source=str(path))
    return [m for m, _ in pairs]


def load_sensor_file(path: str | Path) -> list[Modality]:
    """The modalities of a custom-sensor YAML file, validated but not registered (see
    ``earthplat.sensors.file`` for the format; ``register_sensor_file`` also registers them)."""
    from earthplat.sensors.file import load_sensor_file as load

    return load(path)


def reset_custom_modalities() -> None:
    """Forget every custom modality and that ``EARTHPLAT_SENSORS`` was read (the next lookup
    reads it again). For tests and long-lived processes whose sensor files changed."""
    global _env_loaded
    with _lock:
        _custom.clear()
        _custom_source.clear()
        _env_loaded = False


def modalities() -> list[Modality]:
    """Every registered modality: the built-ins, then custom sensors (a custom one that replaces
    a built-in takes its place)."""
    _load_env_sensors()
    merged = {**_BUILTIN, **_custom}
    return list(merged.values())


def get_modality(name: str) -> Modality:
    """Look a modality up by name (``sentinel2_l2a``; ``s2``/``s1`` are accepted shorthands),
    built-in or custom."""
    _load_env_sensors()
    key = _SHORTHANDS.get(name, name)
    found = _custom.get(key) or _BUILTIN.get(key)
    if found is None:
        from earthplat.errors import SensorError

        known = ", ".join(m.name for m in modalities())
        raise SensorError(
            f"unknown modality {name!r}; known: {known} (a custom sensor is added with a YAML "
            f"file listed in {SENSORS_ENV}, see earthplat.sensors.file)"
        )
    return found


class _Registry(Mapping[str, Modality]):
    """Read-only name -> modality view of the registry (built-in and custom)."""

    def __getitem__(self, name: str) -> Modality:
        _load_env_sensors()
        found = _custom.get(name) or _BUILTIN.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter([m.name for m in modalities()])

    def __len__(self) -> int:
        return len(modalities())

    def __repr__(self) -> str:
        return f"MODALITIES({', '.join(self)})"


MODALITIES: Mapping[str, Modality] = _Registry()
"""Every registered modality by name; prefer ``get_modality`` (shorthands, clear errors) and
``modalities()``."""


def check_modality(m: Modality) -> None:
    """Raise ``SensorError`` naming every inconsistency of a modality: band names, common names
    and aliases that would look up two different bands, band sets that do not hold every band
    exactly once, composites over unknown bands, non-positive std or GSD, a dtype that cannot be
    stored, a nodata value the dtype cannot hold."""
    problems: list[str] = []
    if not re.fullmatch(r"[a-z][a-z0-9_]*", m.name):
        problems.append("its name must be lowercase letters, digits and _ (e.g. 'my_sensor')")
    if not m.bands:
        problems.append("it has no bands")
    owner: dict[str, str] = {}
    for b in m.bands:
        if not (math.isfinite(b.mean) and math.isfinite(b.std) and b.std > 0):
            problems.append(f"band {b.name}: mean must be finite and std positive")
        if not (math.isfinite(b.gsd_m) and b.gsd_m > 0):
            problems.append(f"band {b.name}: gsd_m must be positive")
        for key in {k.lower() for k in (b.name, b.common_name or "", *b.aliases) if k}:
            if key in owner and owner[key] != b.name:
                problems.append(f"{key!r} would name both band {owner[key]} and band {b.name}")
            owner.setdefault(key, b.name)
    in_sets = [n for s in m.band_sets for n in s]
    if sorted(in_sets) != sorted(m.band_names):
        problems.append(
            f"band_sets {[list(s) for s in m.band_sets]} must hold every band "
            f"({', '.join(m.band_names)}) exactly once"
        )
    for c in m.composites:
        if len(c.bands) != 3 or len(c.ranges) != 3:
            problems.append(f"composite {c.name}: needs 3 bands and 3 (low, high) ranges")
        unknown = [p for e in c.bands for p in e.split("-") if p.lower() not in owner]
        if unknown:
            problems.append(f"composite {c.name}: unknown bands {', '.join(unknown)}")
        if any(len(r) != 2 or not r[0] < r[1] for r in c.ranges):
            problems.append(f"composite {c.name}: each range must be (low, high) with low < high")
    if m.dtype not in STORAGE_DTYPES:
        problems.append(f"dtype {m.dtype!r} is not one of {', '.join(STORAGE_DTYPES)}")
    elif m.nodata is not None:
        rng = dtype_range(m.dtype)
        if rng is not None and (m.nodata != int(m.nodata) or not rng[0] <= m.nodata <= rng[1]):
            problems.append(f"nodata {m.nodata} does not fit dtype {m.dtype} ({rng[0]}..{rng[1]})")
    if problems:
        from earthplat.errors import SensorError

        raise SensorError(f"modality {m.name!r}: " + "; ".join(problems))


def normalize(
    values: Any, modality: str | Modality, bands: tuple[str, ...] | None = None, band_axis: int = -3
) -> Any:
    """OlmoEarth normalisation: (x - (mean - 2 std)) / (4 std), per band, so that mean +/- 2 std
    maps to [0, 1]. Works on numpy arrays and torch tensors; ``band_axis`` indexes the bands."""
    m = get_modality(modality) if isinstance(modality, str) else modality
    means, stds = m.stats(bands)
    shape = [1] * values.ndim
    shape[band_axis] = len(means)
    if hasattr(values, "new_tensor"):  # torch
        mean = values.new_tensor(means).reshape(shape)
        std = values.new_tensor(stds).reshape(shape)
    else:
        import numpy as np

        mean = np.asarray(means, dtype=np.float32).reshape(shape)
        std = np.asarray(stds, dtype=np.float32).reshape(shape)
    return (values - (mean - 2 * std)) / (4 * std)
