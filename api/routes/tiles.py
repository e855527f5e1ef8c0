"""XYZ PNG tiles of window layers, and what a map needs to show them (layers, periods, presets).

``GET /api/v1/tiles/{window_id}/{layer}/{t}/{z}/{x}/{y}.png?preset=true_color`` renders period
``t`` of a materialised layer of the window (see ``labeling.tiles``); label layers take the
project's class colours. Tiles outside the window are transparent PNGs (not 404s), so a map can
request every tile in view. Reading needs the project's ``read`` permission (viewer).

``GET /api/v1/tiles/{window_id}`` also lists the window's ``predictions``: one layer per
succeeded inference job that predicted it, newest first, served by ``api.routes.predictions``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from api.deps import SessionDep, SettingsDep, WindowRead
from api.errors import InvalidInputError, NotFoundError
from api.schemas.predictions import PredictionLayerPublic
from labeling.models import DatasetRecord, Project, WindowRecord

router = APIRouter(tags=["tiles"])
CACHE = "private, max-age=300"


class TileLayerPublic(BaseModel):
    name: str
    modality: str
    bands: list[str]
    periods: list[list[str]]
    """[start, end] of each period t (ISO)."""
    missing_periods: list[int]
    presets: list[str]
    tiles: str
    """URL template: ``{t}``, ``{z}``, ``{x}``, ``{y}`` to fill in."""


class WindowTilesPublic(BaseModel):
    window_id: int
    name: str
    bounds: list[float]
    """WGS84 (min lon, min lat, max lon, max lat)."""
    layers: list[TileLayerPublic]
    predictions: list[PredictionLayerPublic] = []
    """Inference jobs' predictions of the window, newest first."""


def _root(session, window: WindowRecord) -> Path:
    """The root of the dataset holding ``window``."""
    return Path(session.get(DatasetRecord, window.dataset_id).path)


def _layer_file(root: Path, window: WindowRecord, layer: str) -> Path:
    from earthplat.data.dataset import Dataset

    path = Path(Dataset(root).layer_path(window.name, layer))
    if not path.is_file() or not path.with_suffix(".json").is_file():
        have = Dataset(root).layers(window.name)
        raise NotFoundError(
            f"window {window.id} ({window.name}) has no layer {layer!r}; it has "
            f"{', '.join(have) or 'none yet'}",
            fix="materialise the layer first (a materialize job)",
        )
    return path


@router.get("/tiles/{window_id}", response_model=WindowTilesPublic)
def read_window_tiles(row: WindowRead, session: SessionDep, settings: SettingsDep):
    """The window's materialised layers with their periods and presets, its predictions, and
    tile URLs."""
    from api.routes.predictions import window_tiles_url
    from earthplat.data.dataset import Dataset
    from labeling.predictions import window_layers
    from labeling.tiles import layer_info, presets

    root = _root(session, row)
    ds = Dataset(root)
    layers = []
    for name in ds.layers(row.name):
        meta = layer_info(ds.layer_path(row.name, name))
        layers.append(
            TileLayerPublic(
                name=name,
                modality=meta["modality"],
                bands=meta["bands"],
                periods=meta["periods"],
                missing_periods=meta.get("missing_periods", []),
                presets=presets(meta["modality"]),
                tiles=f"/api/v1/tiles/{row.id}/{name}/{{t}}/{{z}}/{{x}}/{{y}}.png",
            )
        )
    from shapely.geometry import shape

    bounds = list(shape(row.geometry).bounds)
    predictions = [
        PredictionLayerPublic(**p, tiles=window_tiles_url(row.id, p["job_id"]))
        for p in window_layers(session, window=row, data_dir=settings.data_dir)
    ]
    return WindowTilesPublic(
        window_id=row.id, name=row.name, bounds=bounds, layers=layers, predictions=predictions
    )


@router.get(
    "/tiles/{window_id}/{layer}/{t}/{z}/{x}/{y}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def read_tile(
    row: WindowRead,
    layer: str,
    t: int,
    z: int,
    x: int,
    y: int,
    session: SessionDep,
    preset: str | None = Query(None, max_length=64, description="Composite of the registry"),
) -> Response:
    from labeling.tiles import layer_info, render_tile

    if not (0 <= z <= 24 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInputError(f"tile {z}/{x}/{y} does not exist", fix="0 <= x, y < 2**z")
    root = _root(session, row)
    path = _layer_file(root, row, layer)
    meta = layer_info(path)
    n = int(meta["shape"][0])
    if not 0 <= t < n:
        raise NotFoundError(
            f"layer {layer!r} of window {row.id} has {n} period(s); there is no t={t}",
            fix=f"use t from 0 to {n - 1}",
        )
    project = session.get(Project, row.project_id)
    classes = project.classes if meta["modality"] == "label" and project.classes else None
    png = render_tile(path, t=t, z=z, x=x, y=y, preset=preset, classes=classes)
    return Response(png, media_type="image/png", headers={"Cache-Control": CACHE})
