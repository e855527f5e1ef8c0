"""The projection of a window: UTM by zone, or UPS near the poles."""

from __future__ import annotations

import math

from earthplat.errors import WindowError


def utm_zone(lon: float, lat: float) -> int:
    """UTM zone number, with the Norway (32V) and Svalbard (31X-37X) exceptions."""
    if not -180.0 <= lon <= 180.0 or not -90.0 <= lat <= 90.0:
        raise WindowError(f"({lon}, {lat}) is not a longitude/latitude pair in degrees")
    zone = math.floor((lon + 180.0) / 6.0) % 60 + 1
    if 56.0 <= lat < 64.0 and 3.0 <= lon < 12.0:
        return 32
    if 72.0 <= lat < 84.0 and lon >= 0.0:
        if lon < 9.0:
            return 31
        if lon < 21.0:
            return 33
        if lon < 33.0:
            return 35
        if lon < 42.0:
            return 37
    return zone


def crs_for_lonlat(lon: float, lat: float) -> str:
    """``EPSG:326zz``/``EPSG:327zz`` for UTM; UPS North (``EPSG:32661``) from 84 N and UPS South
    (``EPSG:32761``) below 80 S, where UTM is not defined."""
    if lat >= 84.0:
        return "EPSG:32661"
    if lat < -80.0:
        return "EPSG:32761"
    zone = utm_zone(lon, lat)
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"
