"""``Window``: the unit of labelling, training and inference.

A window is a projection (UTM zone or UPS by default), integer pixel bounds at a resolution, and
a time range. Pixel bounds follow the convention ``col = (x - x0) / res`` and
``row = (y0 - y) / res`` in projected metres, with the grid origin (x0, y0) = (0, 0) by default,
so every window at one resolution in one CRS lies on a single global pixel grid and two windows
of the same zone align pixel-exactly. A window may instead keep a source raster's CRS and grid
(``GridChoice.of_raster``: its origin is the raster's corner), so that its pixels are exactly the
raster's pixels.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from earthplat.data.projection import crs_for_lonlat
from earthplat.errors import WindowError


def parse_time(value: str | datetime) -> datetime:
    """ISO date or datetime as a UTC-aware datetime (naive inputs are taken as UTC)."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise WindowError(f"{value!r} is not an ISO date (YYYY-MM-DD) or datetime") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


_NAME_OK = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class Window:
    """A projected, pixel-aligned area over a time range."""

    name: str
    crs: str
    """``EPSG:XXXX`` of the window's UTM zone or UPS."""
    resolution: float
    """Metres per pixel."""
    bounds: tuple[int, int, int, int]
    """(col_min, row_min, col_max, row_max) on the window's pixel grid; max exclusive."""
    start: datetime
    end: datetime
    group: str = "default"
    properties: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    origin: tuple[float, float] = (0.0, 0.0)
    """(x, y) in the CRS of pixel (0, 0) of the window's grid. (0, 0) is the CRS's global grid;
    a window that keeps a source raster's own grid (``--crs source``, imported patches) has
    that raster's corner, so its pixels are the raster's pixels."""

    def __post_init__(self) -> None:
        if not _NAME_OK.match(self.name):
            raise WindowError(
                f"window name {self.name!r} may only hold letters, digits, '_', '-' and '.'"
            )
        c0, r0, c1, r1 = self.bounds
        if c1 <= c0 or r1 <= r0:
            raise WindowError(f"window {self.name}: empty pixel bounds {self.bounds}")
        if self.resolution <= 0:
            raise WindowError(f"window {self.name}: resolution must be > 0")
        object.__setattr__(self, "origin", (float(self.origin[0]), float(self.origin[1])))
        object.__setattr__(self, "start", parse_time(self.start))
        object.__setattr__(self, "end", parse_time(self.end))
        if self.end <= self.start:
            raise WindowError(
                f"window {self.name}: time range ends ({self.end:%Y-%m-%d}) before it starts "
                f"({self.start:%Y-%m-%d})"
            )

    # --- geometry --------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.bounds[2] - self.bounds[0]

    @property
    def height(self) -> int:
        return self.bounds[3] - self.bounds[1]

    @property
    def transform(self):
        from affine import Affine

        c0, r0 = self.bounds[0], self.bounds[1]
        res, (ox, oy) = self.resolution, self.origin
        return Affine(res, 0.0, ox + c0 * res, 0.0, -res, oy - r0 * res)

    @property
    def projected_bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the window's CRS, metres."""
        c0, r0, c1, r1 = self.bounds
        res, (ox, oy) = self.resolution, self.origin
        return (ox + c0 * res, oy - r1 * res, ox + c1 * res, oy - r0 * res)

    def geometry(self):
        """The footprint in the window's CRS (shapely)."""
        from shapely.geometry import box

        return box(*self.projected_bounds)

    def geometry_wgs84(self):
        """The footprint in WGS84 longitude/latitude (densified edges)."""
        from rasterio.warp import transform_geom
        from shapely.geometry import shape

        geom = transform_geom(
            self.crs,
            "EPSG:4326",
            self.geometry().__geo_interface__,
            antimeridian_cutting=True,
            precision=-1,
        )
        return shape(geom)

    # --- (de)serialisation --------------------------------------------------------------------
    def to_record(self) -> dict[str, Any]:
        import json

        c0, r0, c1, r1 = self.bounds
        return {
            "name": self.name,
            "group": self.group,
            "crs": self.crs,
            "resolution": self.resolution,
            "col_min": c0,
            "row_min": r0,
            "col_max": c1,
            "row_max": r1,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "properties": json.dumps(self.properties, sort_keys=True, default=str),
            "origin_x": self.origin[0],
            "origin_y": self.origin[1],
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Window:
        import json

        props = rec.get("properties") or "{}"
        return cls(
            name=str(rec["name"]),
            crs=str(rec["crs"]),
            resolution=float(rec["resolution"]),
            bounds=(
                int(rec["col_min"]),
                int(rec["row_min"]),
                int(rec["col_max"]),
                int(rec["row_max"]),
            ),
            start=rec["start"],
            end=rec["end"],
            group=str(rec.get("group") or "default"),
            properties=json.loads(props) if isinstance(props, str) else dict(props),
            origin=(_number(rec.get("origin_x")), _number(rec.get("origin_y"))),
        )


def _number(value: Any) -> float:
    """A float from an index column (absent or NaN in indexes written before it existed: 0)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(x) else x


# --- creation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridChoice:
    """The CRS and grid origin windows are laid on."""

    crs: str
    origin: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def utm(cls, lon: float, lat: float) -> GridChoice:
        """The UTM zone (UPS near the poles) of a place, on the zone's global grid."""
        return cls(crs_for_lonlat(lon, lat))

    @classmethod
    def of_raster(cls, path: str) -> GridChoice:
        """A raster's own CRS, with its corner as the grid origin."""
        import rasterio

        from earthplat.errors import DataError

        with rasterio.open(path) as src:
            if src.crs is None:
                raise DataError(
                    f"{path} has no CRS, so windows cannot keep it; georeference it first "
                    "(earthplat raster georef IN OUT --crs EPSG:N --bounds ...)"
                )
            return cls(src.crs.to_string(), (src.transform.c, src.transform.f))


def window_of_raster(
    path: str,
    *,
    name: str,
    start: str | datetime,
    end: str | datetime,
    resolution: float | None = None,
    group: str = "default",
    properties: dict[str, Any] | None = None,
) -> Window:
    """One window over the whole of a raster, in the raster's own CRS and on its own grid
    (origin = its corner), so that materialising it (nearest neighbour) copies its pixels.

    ``resolution`` defaults to the raster's pixel size; a raster whose pixels are not quite
    square (EuroSAT patches: up to 1.2 % apart) gets square pixels of the geometric mean size,
    which still maps each of a 64 px patch's pixels to itself (the error stays under half a
    pixel up to about 1.5 % anisotropy)."""
    import rasterio

    from earthplat.errors import DataError

    grid = GridChoice.of_raster(path)
    with rasterio.open(path) as src:
        t, w, h = src.transform, src.width, src.height
    if t.b or t.d:
        raise DataError(f"{path} is rotated (its transform has shear terms); warp it north-up")
    if t.e > 0:
        raise DataError(f"{path} is stored south-up (positive pixel height); warp it north-up")
    res = float(resolution or math.sqrt(abs(t.a) * abs(t.e)))
    cols, rows = max(1, round(w * abs(t.a) / res)), max(1, round(h * abs(t.e) / res))
    return Window(
        name, grid.crs, res, (0, 0, cols, rows), start, end, group, properties or {}, grid.origin
    )


GridFor = Callable[[float, float], GridChoice]
"""(lon, lat) -> the grid a window at that place is laid on."""


def _grid(grid_for: GridFor | None, crs: str | None, lon: float, lat: float) -> GridChoice:
    if crs is not None:
        return GridChoice(crs)
    return (grid_for or GridChoice.utm)(lon, lat)


def _to_projected(geom_wgs84, crs: str):
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    return shape(transform_geom("EPSG:4326", crs, geom_wgs84.__geo_interface__))


def _check_geometry(geom, what: str):
    from shapely.validation import explain_validity

    if geom.is_empty:
        raise WindowError(f"{what} is empty")
    if not geom.is_valid:
        raise WindowError(
            f"{what} is not a valid geometry ({explain_validity(geom)}); repair "
            "it (e.g. shapely.make_valid) and try again"
        )
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise WindowError(
            f"{what} has coordinates outside longitude/latitude range; AOIs are "
            "WGS84 (EPSG:4326) lon/lat"
        )


def windows_from_aoi(
    aoi,
    *,
    start: str | datetime,
    end: str | datetime,
    size: int = 256,
    resolution: float = 10.0,
    crs: str | None = None,
    group: str = "default",
    name_prefix: str = "",
    grid_for: GridFor | None = None,
) -> list[Window]:
    """A grid of ``size`` x ``size`` pixel windows covering ``aoi`` (WGS84 shapely geometry, a
    GeoJSON mapping, or a (minlon, minlat, maxlon, maxlat) bbox). Grid cells are aligned to
    multiples of ``size`` on the zone's pixel grid, so re-running with a larger AOI reproduces
    the same cells. Only cells that intersect the AOI are kept."""
    from shapely.geometry import box, shape
    from shapely.prepared import prep

    if isinstance(aoi, tuple | list):
        if len(aoi) != 4:
            raise WindowError(
                f"a bbox needs 4 numbers (--bbox [minlon, minlat, maxlon, maxlat]), got {list(aoi)}"
            )
        if not (aoi[0] < aoi[2] and aoi[1] < aoi[3]):
            raise WindowError(
                f"bbox {list(aoi)} is empty or inverted; give [minlon, minlat, maxlon, maxlat]"
            )
        geom = box(*aoi)
    elif isinstance(aoi, dict):
        geom = (
            shape(aoi.get("geometry", aoi))
            if aoi.get("type") != "FeatureCollection"
            else __import__("shapely").union_all([shape(f["geometry"]) for f in aoi["features"]])
        )
    else:
        geom = aoi
    _check_geometry(geom, "the AOI")
    if size < 1:
        raise WindowError("size must be >= 1 pixel")
    centroid = geom.centroid
    grid = _grid(grid_for, crs, centroid.x, centroid.y)
    (ox, oy), crs = grid.origin, grid.crs
    projected = _to_projected(geom, crs)
    prepared = prep(projected)
    minx, miny, maxx, maxy = projected.bounds
    cell = size * resolution
    windows = []
    for gx in range(math.floor((minx - ox) / cell), math.ceil((maxx - ox) / cell)):
        for gy in range(math.floor((oy - maxy) / cell), math.ceil((oy - miny) / cell)):
            c0, r0 = gx * size, gy * size
            tile = box(
                ox + c0 * resolution,
                oy - (r0 + size) * resolution,
                ox + (c0 + size) * resolution,
                oy - r0 * resolution,
            )
            if prepared.intersects(tile):
                code = crs.split(":")[-1]
                windows.append(
                    Window(
                        f"{name_prefix}{code}_{resolution:g}m_{c0}_{r0}",
                        crs,
                        resolution,
                        (c0, r0, c0 + size, r0 + size),
                        start,
                        end,
                        group,
                        origin=grid.origin,
                    )
                )
    return windows


def window_around(
    lon: float,
    lat: float,
    *,
    name: str,
    start,
    end,
    size: int = 256,
    resolution: float = 10.0,
    crs: str | None = None,
    group: str = "default",
    properties: dict | None = None,
    grid_for: GridFor | None = None,
) -> Window:
    """A ``size`` x ``size`` window centred (to the pixel) on a point."""
    from rasterio.warp import transform

    grid = _grid(grid_for, crs, lon, lat)
    (ox, oy), crs = grid.origin, grid.crs
    xs, ys = transform("EPSG:4326", crs, [lon], [lat])
    col, row = math.floor((xs[0] - ox) / resolution), math.floor((oy - ys[0]) / resolution)
    c0, r0 = col - size // 2, row - size // 2
    return Window(
        name,
        crs,
        resolution,
        (c0, r0, c0 + size, r0 + size),
        start,
        end,
        group,
        properties or {},
        grid.origin,
    )


def windows_from_points(
    rows: list[dict[str, Any]],
    *,
    size: int = 256,
    resolution: float = 10.0,
    group: str = "default",
    grid_for: GridFor | None = None,
) -> list[Window]:
    """One window per row of ``lon, lat, start, end`` (optional ``name``; other columns become
    properties)."""
    windows = []
    for i, row in enumerate(rows):
        missing = [k for k in ("lon", "lat", "start", "end") if row.get(k) in (None, "")]
        if missing:
            raise WindowError(
                f"point row {i + 1} lacks {', '.join(missing)}; the CSV needs "
                "columns lon, lat, start, end"
            )
        try:
            lon, lat = float(row["lon"]), float(row["lat"])
        except ValueError:
            raise WindowError(f"point row {i + 1}: lon/lat must be numbers") from None
        props = {k: v for k, v in row.items() if k not in ("lon", "lat", "start", "end", "name")}
        windows.append(
            window_around(
                lon,
                lat,
                name=str(row.get("name") or f"pt{i:06d}"),
                start=row["start"],
                end=row["end"],
                size=size,
                resolution=resolution,
                group=group,
                properties=props,
                grid_for=grid_for,
            )
        )
    return windows


def windows_from_points_csv(path: str, **kwargs) -> list[Window]:
    import csv

    import fsspec

    with fsspec.open(path, "r") as f:
        return windows_from_points(list(csv.DictReader(f)), **kwargs)


def windows_from_polygons(
    features: list[dict[str, Any]],
    *,
    start,
    end,
    resolution: float = 10.0,
    pad: int = 0,
    group: str = "default",
    max_size: int = 4096,
    grid_for: GridFor | None = None,
) -> list[Window]:
    """One window per GeoJSON feature (WGS84), bounding it on the pixel grid plus ``pad``
    pixels. Feature properties become window properties; ``name`` names the window."""
    from shapely.geometry import shape

    windows = []
    for i, feat in enumerate(features):
        geom = shape(feat["geometry"])
        _check_geometry(geom, f"polygon {i + 1}")
        c = geom.centroid
        grid = _grid(grid_for, None, c.x, c.y)
        (ox, oy), crs = grid.origin, grid.crs
        minx, miny, maxx, maxy = _to_projected(geom, crs).bounds
        c0 = math.floor((minx - ox) / resolution) - pad
        c1 = math.ceil((maxx - ox) / resolution) + pad
        r0 = math.floor((oy - maxy) / resolution) - pad
        r1 = math.ceil((oy - miny) / resolution) + pad
        if max(c1 - c0, r1 - r0) > max_size:
            raise WindowError(
                f"polygon {i + 1} spans {c1 - c0}x{r1 - r0} px at {resolution} m, "
                f"over max_size={max_size}; grid it with windows_from_aoi instead"
            )
        props = dict(feat.get("properties") or {})
        name = str(props.pop("name", f"poly{i:06d}"))
        windows.append(
            Window(
                name,
                crs,
                resolution,
                (c0, r0, max(c1, c0 + 1), max(r1, r0 + 1)),
                props.pop("start", start),
                props.pop("end", end),
                group,
                props,
                grid.origin,
            )
        )
    return windows
