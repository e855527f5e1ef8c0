"""Data collection: windows (from an AOI grid, points or polygons), datasets and layers.

Windows live twice: as rows (the labelling tasks) and in the project's earthplat ``Dataset``
directory (``DATA_DIR/projects/ID/datasets/NAME``), written with ``Dataset.write_windows``
before the rows are committed, so a failure leaves neither half.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from earthplat.errors import EarthplatError
from labeling.models import (
    STATUSES,
    Annotation,
    Assignment,
    DatasetRecord,
    Layer,
    Project,
    WindowRecord,
)
from labeling.services.errors import ConflictError, InvalidInputError, NotFoundError


def get_dataset(
    session: Session, *, project_id: int, name: str, project_dir: Path, create: bool = True
) -> DatasetRecord:
    record = session.scalar(
        select(DatasetRecord).where(
            DatasetRecord.project_id == project_id, DatasetRecord.name == name
        )
    )
    if record is None:
        if not create:
            raise NotFoundError(f"project {project_id} has no dataset {name!r}")
        record = DatasetRecord(
            project_id=project_id, name=name, path=str(project_dir / "datasets" / name)
        )
        session.add(record)
        session.flush()
    return record


def list_datasets(session: Session, *, project_id: int) -> list[DatasetRecord]:
    return list(
        session.scalars(
            select(DatasetRecord)
            .where(DatasetRecord.project_id == project_id)
            .order_by(DatasetRecord.id)
        )
    )


def estimate_aoi_cells(bounds: tuple[float, float, float, float], *, size: int, res: float) -> int:
    """Upper estimate of the grid cells over a lon/lat bbox (before building any)."""
    minx, miny, maxx, maxy = bounds
    lat = max(abs(miny), abs(maxy))
    width_m = (maxx - minx) * 111_320.0 * max(math.cos(math.radians(min(lat, 89.9))), 0.01)
    height_m = (maxy - miny) * 110_574.0
    cell = size * res
    return (math.ceil(width_m / cell) + 2) * (math.ceil(height_m / cell) + 2)


def build_windows(kind: str, *, max_windows: int, **kwargs: Any) -> list:
    """earthplat ``Window`` objects from ``aoi`` / ``points`` / ``polygons`` arguments; earthplat
    errors become ``InvalidInputError`` (422) with their message."""
    from earthplat.data import window as W

    try:
        if kind == "aoi":
            from shapely.geometry import box, shape

            aoi = kwargs.pop("aoi")
            if isinstance(aoi, list | tuple):
                geom = box(*aoi)
            elif aoi.get("type") == "FeatureCollection":
                import shapely

                geom = shapely.union_all([shape(f["geometry"]) for f in aoi.get("features", [])])
            else:
                geom = shape(aoi.get("geometry", aoi) if aoi.get("type") == "Feature" else aoi)
            W._check_geometry(geom, "the AOI")
            cells = estimate_aoi_cells(geom.bounds, size=kwargs["size"], res=kwargs["resolution"])
            if cells > 4 * max_windows:
                raise InvalidInputError(
                    f"the AOI needs about {cells} windows of {kwargs['size']} px at "
                    f"{kwargs['resolution']} m, over the limit of {max_windows}",
                    fix="split the AOI, or use larger windows (size) or a coarser resolution",
                )
            windows = W.windows_from_aoi(geom, **kwargs)
        elif kind == "points":
            windows = W.windows_from_points(kwargs.pop("rows"), **kwargs)
        else:
            windows = W.windows_from_polygons(kwargs.pop("features"), **kwargs)
    except InvalidInputError:
        raise
    except EarthplatError as e:
        raise InvalidInputError(str(e), fix="correct the geometry, times or sizes") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise InvalidInputError(
            f"the geometry is not valid GeoJSON ({type(e).__name__}: {e})",
            fix="send a GeoJSON geometry/Feature/FeatureCollection in WGS84 lon/lat",
        ) from None
    if not windows:
        raise InvalidInputError("no windows: the input covers no grid cell")
    if len(windows) > max_windows:
        raise InvalidInputError(
            f"{len(windows)} windows, over the limit of {max_windows} per request",
            fix="split the request, or use larger windows",
        )
    return windows


def add_windows(
    session: Session,
    *,
    project: Project,
    dataset: DatasetRecord,
    windows: list,
    skip_existing: bool,
) -> tuple[list[WindowRecord], int]:
    """Persist ``windows`` in the DB and the dataset dir; returns (new rows, skipped count).
    Same-named windows already in the dataset are skipped (``skip_existing``) or a 409."""
    from earthplat.data.dataset import Dataset

    names = [w.name for w in windows]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[:5]
        raise InvalidInputError(f"duplicate window names: {', '.join(dup)}")
    existing = set(
        session.scalars(
            select(WindowRecord.name).where(
                WindowRecord.dataset_id == dataset.id, WindowRecord.name.in_(names)
            )
        )
    )
    if existing and not skip_existing:
        raise ConflictError(
            f"dataset {dataset.name!r} already has windows named {', '.join(sorted(existing)[:5])}",
            fix="give other names (a 'name' column/property) or use another dataset",
        )
    new = [w for w in windows if w.name not in existing]
    rows = [
        WindowRecord(
            project_id=project.id,
            dataset_id=dataset.id,
            name=w.name,
            group=w.group,
            crs=w.crs,
            resolution=w.resolution,
            col_min=w.bounds[0],
            row_min=w.bounds[1],
            col_max=w.bounds[2],
            row_max=w.bounds[3],
            start=w.start,
            end=w.end,
            geometry=w.geometry_wgs84().__geo_interface__,
            properties=_jsonable(w.properties),
        )
        for w in new
    ]
    session.add_all(rows)
    session.flush()
    if new:
        try:
            with _dataset_lock(Path(dataset.path)):
                Dataset(dataset.path).write_windows(new, mode="merge")
                session.commit()
        except EarthplatError as e:
            session.rollback()
            raise InvalidInputError(str(e)) from None
    session.commit()
    return rows, len(windows) - len(new)


@contextmanager
def _dataset_lock(root: Path) -> Iterator[None]:
    """Serialise read-merge-write of a dataset index across threads and processes."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".windows.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _jsonable(props: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(props, default=str))


def get_window(session: Session, *, window_id: int) -> WindowRecord:
    row = session.get(WindowRecord, window_id)
    if row is None:
        raise NotFoundError(f"no window {window_id}")
    return row


@dataclass(frozen=True)
class WindowFilter:
    """Which windows of a project a listing, count, summary or overview covers. Every field
    left at its default matches all windows; set fields are ANDed."""

    statuses: tuple[str, ...] = ()
    """Windows in any of these statuses (``STATUSES``)."""
    assignee: int | None = None
    """Windows assigned to this user."""
    unassigned: bool = False
    """Windows assigned to nobody (excludes ``assignee``)."""
    class_value: int | None = None
    """Windows with at least one annotation of this class."""
    min_valid: float | None = None
    """``valid_fraction >= min_valid``; windows not yet materialised (``None``) never match."""
    max_valid: float | None = None
    """``valid_fraction <= max_valid``; likewise."""
    q: str | None = None
    """Case-insensitive substring of the window's name."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.statuses) - set(STATUSES))
        if unknown:
            raise InvalidInputError(
                f"unknown window status {', '.join(map(repr, unknown))}",
                fix=f"use one or more of {', '.join(STATUSES)}",
            )
        if self.unassigned and self.assignee is not None:
            raise InvalidInputError("give a user id or 'none' as assignee, not both")
        for name in ("min_valid", "max_valid"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{name}={value} is outside 0..1")
        if (self.min_valid or 0.0) > (1.0 if self.max_valid is None else self.max_valid):
            raise InvalidInputError(
                f"min_valid={self.min_valid} is above max_valid={self.max_valid}",
                fix="give min_valid <= max_valid",
            )

    def conditions(self, project_id: int) -> list:
        """The SQL conditions on ``WindowRecord`` (EXISTS subqueries for assignments and
        annotations, so a window never repeats)."""
        w = WindowRecord
        out = [w.project_id == project_id]
        if self.statuses:
            out.append(w.status.in_(self.statuses))
        if self.assignee is not None or self.unassigned:
            assigned = select(Assignment.id).where(Assignment.window_id == w.id)
            if self.unassigned:
                out.append(~assigned.exists())
            else:
                out.append(assigned.where(Assignment.user_id == self.assignee).exists())
        if self.class_value is not None:
            out.append(
                select(Annotation.id)
                .where(Annotation.window_id == w.id, Annotation.class_value == self.class_value)
                .exists()
            )
        if self.min_valid is not None:
            out.append(w.valid_fraction >= self.min_valid)
        if self.max_valid is not None:
            out.append(w.valid_fraction <= self.max_valid)
        if self.q:
            pattern = self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            out.append(w.name.ilike(f"%{pattern}%", escape="\\"))
        return out


def window_grid(window: WindowRecord) -> dict[str, Any]:
    """The window's pixel grid: size, affine transform and its corners in Web Mercator (what a
    map needs to paint on the grid; see ``api.schemas.windows.WindowGridPublic``)."""
    from rasterio.crs import CRS
    from rasterio.warp import transform

    w = window.to_window()
    a = w.transform
    corners = {
        "top_left": (0, 0),
        "top_right": (w.width, 0),
        "bottom_left": (0, w.height),
        "bottom_right": (w.width, w.height),
    }
    xs, ys = zip(*(a * cr for cr in corners.values()), strict=True)
    mx, my = transform(w.crs, "EPSG:3857", list(xs), list(ys))
    return {
        "window_id": window.id,
        "crs": w.crs,
        "proj4": CRS.from_user_input(w.crs).to_proj4(),
        "resolution": w.resolution,
        "width": w.width,
        "height": w.height,
        "transform": list(a)[:6],
        "corners_3857": {k: [x, y] for k, x, y in zip(corners, mx, my, strict=True)},
    }


def list_windows(
    session: Session,
    *,
    project_id: int,
    filters: WindowFilter | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[WindowRecord]:
    """One page of the project's windows that match ``filters``, by id."""
    where = (filters or WindowFilter()).conditions(project_id)
    query = select(WindowRecord).where(*where).order_by(WindowRecord.id)
    return list(session.scalars(query.offset(offset).limit(limit)))


def count_windows(session: Session, *, project_id: int, filters: WindowFilter | None = None) -> int:
    """How many of the project's windows match ``filters`` (before any paging)."""
    where = (filters or WindowFilter()).conditions(project_id)
    return session.scalar(select(func.count()).select_from(WindowRecord).where(*where)) or 0


def summarize_windows(
    session: Session, *, project_id: int, filters: WindowFilter | None = None
) -> dict[str, Any]:
    """``{"total": n, "by_status": {status: n}}`` with every status present (zero when none),
    counted by the database (one GROUP BY)."""
    where = (filters or WindowFilter()).conditions(project_id)
    rows = session.execute(
        select(WindowRecord.status, func.count()).where(*where).group_by(WindowRecord.status)
    )
    by_status = dict.fromkeys(STATUSES, 0)
    for status, n in rows:
        by_status[status] = by_status.get(status, 0) + n
    return {"total": sum(by_status.values()), "by_status": by_status}


def windows_geojson(
    session: Session, *, project_id: int, filters: WindowFilter | None = None
) -> bytes:
    """Every matching window as a GeoJSON FeatureCollection (UTF-8 bytes): ``id`` and
    properties ``{id, name, status, valid_fraction}`` with the WGS84 footprint.

    Built for tens of thousands of windows: one query of just those columns, and each
    footprint is the stored JSON text spliced in as it is (never parsed and re-encoded)."""
    import json

    w = WindowRecord
    where = (filters or WindowFilter()).conditions(project_id)
    rows = session.execute(
        select(w.id, w.name, w.status, w.valid_fraction, cast(w.geometry, Text))
        .where(*where)
        .order_by(w.id)
    )
    dumps = json.dumps
    features = [
        f'{{"type":"Feature","id":{wid:d},"geometry":{geometry},"properties":{{"id":{wid:d},'
        f'"name":{dumps(name)},"status":{dumps(status)},"valid_fraction":{dumps(valid)}}}}}'
        for wid, name, status, valid, geometry in rows
    ]
    return ('{"type":"FeatureCollection","features":[' + ",".join(features) + "]}").encode()


def add_layer(session: Session, *, commit: bool = True, **fields: Any) -> Layer:
    layer = Layer(**fields)
    session.add(layer)
    session.flush()
    if commit:
        session.commit()
    return layer


def list_layers(session: Session, *, project_id: int) -> list[Layer]:
    return list(
        session.scalars(select(Layer).where(Layer.project_id == project_id).order_by(Layer.id))
    )
