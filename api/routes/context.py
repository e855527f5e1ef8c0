"""Context around a window for the labelling map: overviews of its imagery, and the basemap.

``GET /api/v1/windows/{window_id}/context`` lists the window's context overviews (see
``earthplat.data.context``: a low-resolution view of an imagery layer around the window, built
at materialize time): per layer its WGS84 bounds, the period it shows and its tile URL template.
``GET /api/v1/tiles/{window_id}/{layer}/context/{z}/{x}/{y}.png?preset=`` renders one with
``labeling.tiles.render_tile`` (transparent outside the scenes that cover it), through the same
render cache, ``ETag``/``304`` and ``Cache-Control`` as the window's own tiles
(``api.routes.tiles.png_response``). Both need the project's ``read`` permission.

This router is mounted before ``api.routes.tiles``: the tile route
``/tiles/{window_id}/{layer}/{t}/{z}/{x}/{y}.png`` has as many segments and would otherwise
take ``context`` for a period ``t`` (and answer 422).

``GET /api/v1/ui-config`` is public: the deployment's XYZ basemap (``EARTHPLAT_BASEMAP_URL``,
``EARTHPLAT_BASEMAP_ATTRIBUTION``), which the map draws under the overview, or ``null``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Query, Response

from api.deps import SessionDep, SettingsDep, WindowRead
from api.errors import InvalidInputError, NotFoundError
from api.routes.tiles import PNG, TILE_SIZE, IfNoneMatch, TileCacheDep, Version, png_response
from api.schemas.context import (
    BasemapPublic,
    ContextLayerPublic,
    UiConfigPublic,
    WindowContextPublic,
)
from labeling.models import DatasetRecord, WindowRecord

router = APIRouter(tags=["tiles"])


def _dataset(session, window: WindowRecord):
    from earthplat.data.dataset import Dataset

    return Dataset(session.get(DatasetRecord, window.dataset_id).path)


def _tiles_url(window_id: int, layer: str, version: str) -> str:
    return f"/api/v1/tiles/{window_id}/{layer}/context/{{z}}/{{x}}/{{y}}.png?v={version}"


@router.get("/windows/{window_id}/context", response_model=WindowContextPublic)
def read_window_context(row: WindowRead, session: SessionDep) -> WindowContextPublic:
    """The window's context overviews: which layers have one, where, which period, tile URLs."""
    from earthplat.data.context import context_bounds_wgs84, context_layer, context_metadata
    from labeling.tiles import layer_identity, layer_version, presets

    ds = _dataset(session, row)
    layers = []
    for name in ds.layers(row.name):
        meta = context_metadata(ds, row.name, name)
        if meta is None:
            continue
        version = layer_version(layer_identity(ds.layer_path(row.name, context_layer(name))))
        layers.append(
            ContextLayerPublic(
                layer=name,
                modality=meta["modality"],
                bands=meta["bands"],
                presets=presets(meta["modality"]),
                bounds=context_bounds_wgs84(meta),
                period=meta["context"]["period"],
                period_index=meta["context"]["period_index"],
                resolution=meta["context"]["resolution"],
                valid_fraction=meta["valid_fraction"][0],
                version=version,
                tiles=_tiles_url(row.id, name, version),
            )
        )
    return WindowContextPublic(window_id=row.id, name=row.name, layers=layers)


@router.get(
    "/tiles/{window_id}/{layer}/context/{z}/{x}/{y}.png", response_class=Response, responses=PNG
)
def read_context_tile(
    row: WindowRead,
    layer: str,
    z: int,
    x: int,
    y: int,
    session: SessionDep,
    cache: TileCacheDep,
    if_none_match: IfNoneMatch = None,
    preset: str | None = Query(None, max_length=64, description="Composite of the registry"),
    v: str | None = Version,
) -> Response:
    """Tile ``z/x/y`` of the context overview of a layer of the window."""
    from earthplat.data.context import context_layer
    from labeling.tile_cache import cache_key
    from labeling.tiles import layer_identity, layer_version, render_tile

    if not (0 <= z <= 24 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise InvalidInputError(f"tile {z}/{x}/{y} does not exist", fix="0 <= x, y < 2**z")
    ds = _dataset(session, row)
    path = Path(ds.layer_path(row.name, context_layer(layer)))
    identity = layer_identity(path)
    if identity[0] is None or identity[2] is None:
        have = [n for n in ds.layers(row.name) if ds.layer_done(row.name, context_layer(n))]
        raise NotFoundError(
            f"window {row.id} ({row.name}) has no context overview of layer {layer!r}; "
            f"overviews exist for {', '.join(have) or 'none of its layers'}",
            fix="overviews are built when an imagery layer is materialised (label layers have "
            "none): run a materialize job for it",
        )
    key = cache_key("context", identity, preset=preset, z=z, x=x, y=y, size=TILE_SIZE)
    return png_response(
        cache,
        key=key,
        fresh=v == layer_version(identity),
        if_none_match=if_none_match,
        render=lambda: render_tile(path, t=0, z=z, x=x, y=y, preset=preset, size=TILE_SIZE),
    )


@router.get("/ui-config", response_model=UiConfigPublic)
def read_ui_config(settings: SettingsDep) -> UiConfigPublic:
    """The deployment's settings the browser UI needs (public: nothing secret)."""
    if not settings.basemap_url:
        return UiConfigPublic(basemap=None)
    return UiConfigPublic(
        basemap=BasemapPublic(url=settings.basemap_url, attribution=settings.basemap_attribution)
    )
