"""Data collection: windows from an AOI, points or polygons; datasets; raster uploads; STAC
sources; layers."""

from __future__ import annotations

import csv
import io
import re
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile, status

from api import auth
from api.deps import CurrentUser, PathId, SessionDep, SettingsDep, WindowRead
from api.schemas.windows import (
    AoiCreate,
    DatasetPublic,
    LayerPublic,
    PolygonsCreate,
    StacSourceCreate,
    WindowGridPublic,
    WindowPublic,
    WindowsCreated,
    WindowSummary,
)
from api.settings import Settings
from labeling.models import DatasetRecord, Layer, WindowRecord
from labeling.services import windows as svc
from labeling.services.errors import ConflictError, InvalidInputError, TooLargeError
from labeling.services.projects import get_project
from labeling.services.uploads import store_raster

router = APIRouter(tags=["data collection"])
NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
MAX_PAGE = 1000
"""The most windows one page of ``GET /projects/ID/windows`` holds."""


def _create(session, settings: Settings, project_id: PathId, dataset: str, windows, *, skip: bool):
    project = get_project(session, project_id=project_id)
    record = svc.get_dataset(
        session,
        project_id=project_id,
        name=dataset,
        project_dir=settings.project_dir(project_id),
    )
    rows, skipped = svc.add_windows(
        session, project=project, dataset=record, windows=windows, skip_existing=skip
    )
    return {"dataset": record, "created": len(rows), "skipped": skipped, "windows": rows}


@router.post(
    "/projects/{project_id}/windows/aoi",
    response_model=WindowsCreated,
    status_code=status.HTTP_201_CREATED,
)
def windows_from_aoi(
    project_id: PathId,
    body: AoiCreate,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
) -> dict:
    """A grid of ``size`` px windows over a bbox or GeoJSON AOI; cells that exist already in
    the dataset are kept (``skipped``)."""
    auth.require(session, user=user, project_id=project_id, permission="manage")
    windows = svc.build_windows(
        "aoi",
        max_windows=settings.max_windows,
        aoi=body.bbox if body.bbox is not None else body.geojson,
        start=body.start,
        end=body.end,
        size=body.size,
        resolution=body.resolution,
    )
    return _create(session, settings, project_id, body.dataset, windows, skip=True)


@router.post(
    "/projects/{project_id}/windows/polygons",
    response_model=WindowsCreated,
    status_code=status.HTTP_201_CREATED,
)
def windows_from_polygons(
    project_id: PathId,
    body: PolygonsCreate,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
) -> dict:
    """One window per GeoJSON feature (its bounds on the pixel grid plus ``pad``)."""
    auth.require(session, user=user, project_id=project_id, permission="manage")
    windows = svc.build_windows(
        "polygons",
        max_windows=settings.max_windows,
        features=body.features,
        start=body.start,
        end=body.end,
        resolution=body.resolution,
        pad=body.pad,
    )
    return _create(session, settings, project_id, body.dataset, windows, skip=False)


@router.post(
    "/projects/{project_id}/windows/points",
    response_model=WindowsCreated,
    status_code=status.HTTP_201_CREATED,
)
def windows_from_points(
    project_id: PathId,
    file: Annotated[UploadFile, File(description="CSV with columns lon, lat, start, end[, name]")],
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    size: Annotated[int, Form(ge=8, le=4096)] = 256,
    resolution: Annotated[float, Form(gt=0, le=1000)] = 10.0,
    dataset: Annotated[str, Form(pattern=r"^[A-Za-z0-9_.\-]{1,100}$")] = "default",
) -> dict:
    """One window centred on each point of an uploaded CSV."""
    auth.require(session, user=user, project_id=project_id, permission="manage")
    data = file.file.read(int(settings.max_upload_mb * 2**20) + 1)
    if len(data) > settings.max_upload_mb * 2**20:
        raise TooLargeError(f"the CSV is larger than {settings.max_upload_mb:g} MiB")
    try:
        text = data.decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as e:
        raise InvalidInputError(
            f"the points file is not a UTF-8 CSV ({e})", fix="upload a CSV: lon,lat,start,end"
        ) from None
    if not rows:
        raise InvalidInputError("the CSV has no rows", fix="upload a CSV: lon,lat,start,end")
    windows = svc.build_windows(
        "points", max_windows=settings.max_windows, rows=rows, size=size, resolution=resolution
    )
    return _create(session, settings, project_id, dataset, windows, skip=False)


def window_filter(
    status: Annotated[
        list[str] | None,
        Query(description="Statuses (repeat the parameter or give a comma list)"),
    ] = None,
    assignee: Annotated[
        str | None,
        Query(
            pattern=r"^(none|[1-9][0-9]{0,9})$",
            description="A user id: windows assigned to them; 'none': unassigned windows",
        ),
    ] = None,
    class_value: Annotated[
        int | None,
        Query(ge=-(2**31), lt=2**31, description="Windows with an annotation of this class"),
    ] = None,
    min_valid: Annotated[
        float | None,
        Query(ge=0, le=1, description="valid_fraction >= this (unmaterialised windows excluded)"),
    ] = None,
    max_valid: Annotated[
        float | None,
        Query(ge=0, le=1, description="valid_fraction <= this (unmaterialised windows excluded)"),
    ] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Name substring")
    ] = None,
) -> svc.WindowFilter:
    """The window filters the listing, the summary and the overview share (a bad value is a
    422 naming it)."""
    statuses = tuple(s.strip() for value in status or [] for s in value.split(",") if s.strip())
    return svc.WindowFilter(
        statuses=statuses,
        assignee=None if assignee in (None, "none") else int(assignee),
        unassigned=assignee == "none",
        class_value=class_value,
        min_valid=min_valid,
        max_valid=max_valid,
        q=q,
    )


WindowFilterDep = Annotated[svc.WindowFilter, Depends(window_filter)]


@router.get("/projects/{project_id}/windows", response_model=list[WindowPublic])
def list_windows(
    project_id: PathId,
    session: SessionDep,
    user: CurrentUser,
    filters: WindowFilterDep,
    response: Response,
    offset: int = Query(0, ge=0, le=2**31 - 1),
    limit: int = Query(
        100, ge=1, le=2**31 - 1, description=f"Page size, at most {MAX_PAGE} (larger is capped)"
    ),
) -> list[WindowRecord]:
    """The project's windows that match the filters, by id, one page of at most ``MAX_PAGE``
    at a time (a larger ``limit`` is served as ``MAX_PAGE``, as older clients asked for more);
    the header ``X-Total-Count`` says how many match before paging."""
    auth.require(session, user=user, project_id=project_id, permission="read")
    total = svc.count_windows(session, project_id=project_id, filters=filters)
    response.headers["X-Total-Count"] = str(total)
    return svc.list_windows(
        session, project_id=project_id, filters=filters, offset=offset, limit=min(limit, MAX_PAGE)
    )


@router.get("/projects/{project_id}/windows/summary", response_model=WindowSummary)
def summarize_windows(
    project_id: PathId, session: SessionDep, user: CurrentUser, filters: WindowFilterDep
) -> dict:
    """How many windows match, per status (every status present)."""
    auth.require(session, user=user, project_id=project_id, permission="read")
    return svc.summarize_windows(session, project_id=project_id, filters=filters)


@router.get(
    "/projects/{project_id}/windows/overview",
    response_class=Response,
    responses={200: {"content": {"application/geo+json": {}}}},
)
def windows_overview(
    project_id: PathId, session: SessionDep, user: CurrentUser, filters: WindowFilterDep
) -> Response:
    """Every matching window (no paging) as a GeoJSON FeatureCollection for a map:
    properties ``{id, name, status, valid_fraction}`` and the WGS84 footprint."""
    auth.require(session, user=user, project_id=project_id, permission="read")
    body = svc.windows_geojson(session, project_id=project_id, filters=filters)
    return Response(body, media_type="application/geo+json")


@router.get("/windows/{window_id}", response_model=WindowPublic)
def read_window(window: WindowRead) -> WindowRecord:
    return window


@router.get("/windows/{window_id}/grid", response_model=WindowGridPublic)
def read_window_grid(window: WindowRead) -> dict:
    """The window's pixel grid (size, transform, Web-Mercator corners), for painting masks."""
    return svc.window_grid(window)


@router.get("/projects/{project_id}/datasets", response_model=list[DatasetPublic])
def list_datasets(
    project_id: PathId, session: SessionDep, user: CurrentUser
) -> list[DatasetRecord]:
    auth.require(session, user=user, project_id=project_id, permission="read")
    return svc.list_datasets(session, project_id=project_id)


@router.post(
    "/projects/{project_id}/layers/upload",
    response_model=LayerPublic,
    status_code=status.HTTP_201_CREATED,
)
def upload_raster(
    project_id: PathId,
    file: Annotated[UploadFile, File(description="A GeoTIFF with a CRS")],
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    name: Annotated[str | None, Form(pattern=r"^[A-Za-z0-9_.\-]{1,100}$")] = None,
    modality: Annotated[str | None, Form(max_length=64)] = None,
) -> Layer:
    """Upload a GeoTIFF (validated: a raster, with a CRS, within the size limit); nothing is
    stored when it is refused."""
    auth.require(session, user=user, project_id=project_id, permission="manage")
    if modality is not None:
        from earthplat.sensors import get_modality

        modality = get_modality(modality).name
    stem = name or re.sub(r"[^A-Za-z0-9_.\-]", "_", (file.filename or "upload").rsplit(".", 1)[0])
    stem = stem[:100] or "upload"
    if any(
        layer.name == stem and layer.kind == "upload"
        for layer in svc.list_layers(session, project_id=project_id)
    ):
        raise ConflictError(f"project {project_id} has an uploaded layer {stem!r}", "rename it")
    dest = settings.project_dir(project_id) / "uploads" / f"{stem}.tif"
    info = store_raster(
        file.file,
        filename=file.filename or stem,
        dest=dest,
        max_bytes=int(settings.max_upload_mb * 2**20),
    )
    try:
        return svc.add_layer(
            session,
            project_id=project_id,
            name=stem,
            kind="upload",
            modality=modality,
            path=str(dest),
            crs=info["crs"],
            info=info,
            created_by=user.id,
        )
    except Exception:
        dest.unlink(missing_ok=True)
        raise


@router.post(
    "/projects/{project_id}/sources/stac",
    response_model=LayerPublic,
    status_code=status.HTTP_201_CREATED,
)
def register_stac(
    project_id: PathId,
    body: StacSourceCreate,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
) -> Layer:
    """Register a STAC source (API or static catalog URL + collection) for materialisation. A
    local catalogue must lie under the server's source roots (``EARTHPLAT_SOURCE_ROOTS``);
    nothing is stored when it does not."""
    auth.require(session, user=user, project_id=project_id, permission="manage")
    from earthplat.sensors import get_modality

    modality = get_modality(body.modality).name
    if not re.match(r"^(https?://[^\s/]+|/|file://)", body.url):
        raise InvalidInputError(
            f"{body.url!r} is not an http(s) URL or an absolute path",
            fix="give the STAC API root (https://.../v1) or a catalog/collection JSON",
        )
    from earthplat.data.sources.roots import check_href

    check_href(body.url, settings.allowed_source_roots())  # SourceRootError: a 422 (api.errors)
    if any(
        layer.name == body.name and layer.kind == "stac"
        for layer in svc.list_layers(session, project_id=project_id)
    ):
        raise ConflictError(f"project {project_id} has a STAC source {body.name!r}", "rename it")
    return svc.add_layer(
        session,
        project_id=project_id,
        name=body.name,
        kind="stac",
        modality=modality,
        path=body.url,
        info={"collection": body.collection, "max_cloud_cover": body.max_cloud_cover},
        created_by=user.id,
    )


@router.get("/projects/{project_id}/layers", response_model=list[LayerPublic])
def list_layers(project_id: PathId, session: SessionDep, user: CurrentUser) -> list[Layer]:
    auth.require(session, user=user, project_id=project_id, permission="read")
    return svc.list_layers(session, project_id=project_id)
