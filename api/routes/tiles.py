"""XYZ PNG tiles and one-image frames of window layers, and what a map needs to show them.

``GET /api/v1/tiles/{window_id}/{layer}/{t}/{z}/{x}/{y}.png?preset=true_color`` renders period
``t`` of a materialised layer of the window (see ``labeling.tiles``); label layers take the
project's class colours. Tiles outside the window are transparent PNGs (not 404s), so a map can
request every tile in view. ``GET /api/v1/tiles/{window_id}/{layer}/frame/{t}.png`` is the whole
window for period ``t`` as one EPSG:3857 PNG (over the listing's ``frame_bounds_3857``), for
small windows: one request per time step. Reading needs the project's ``read`` permission
(viewer), checked on every request, cached or not.

Caching: every PNG is kept in the render cache (``labeling.tile_cache``, shared by the
workers on the data dir) under a key of its source files' identity and the request, and carries
that key as its ``ETag``; ``If-None-Match`` with it is a ``304`` that neither renders nor reads
the PNG. The listing gives each layer a ``version`` (a digest of its files' identity) that its
URL templates carry as ``?v=``: a tile asked for with the current version may be kept for good
(``immutable``), since a re-materialised layer gets a new version and so new URLs; any other is
``no-cache`` (revalidate with the ETag). ``X-Tile-Cache: hit|miss`` says whether it was
rendered.

``GET /api/v1/tiles/{window_id}`` also lists the window's ``predictions``: one layer per
succeeded inference job that predicted it, newest first, served by ``api.routes.predictions``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi import Path as FastPath
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from api.deps import PathId, SessionDep, SettingsDep, WindowRead, _window, bearer, get_current_user
from api.errors import InvalidInputError, NotFoundError, PlatformError
from api.schemas.predictions import PredictionLayerPublic
from labeling.models import DatasetRecord, Project, WindowRecord
from labeling.tile_cache import TileCache, etag, etag_matches

router = APIRouter(tags=["tiles"])
IMMUTABLE = "private, max-age=31536000, immutable"
"""A PNG asked for with the current ``?v=``: its URL changes when its files do."""
REVALIDATE = "private, no-cache"
"""Any other PNG: the browser may keep it but asks again (a cheap 304 when unchanged)."""
PNG = {200: {"content": {"image/png": {}}}, 304: {"description": "Not modified (ETag)"}}
TILE_SIZE = 256


class TileLayerPublic(BaseModel):
    name: str
    modality: str
    categorical: bool
    """A class map (labels, land cover): shown as an overlay over imagery, in class colours."""
    bands: list[str]
    periods: list[list[str]]
    """[start, end] of each period t (ISO)."""
    missing_periods: list[int]
    valid_fraction: list[float]
    """Per period t, the share of the window's pixels with valid imagery (0 to 1)."""
    acquired: list[list[str]]
    """Per period t, the acquisition datetimes (ISO) of the scenes composited into it."""
    presets: list[str]
    version: str
    """A digest of the layer's files; it changes when the layer is materialised again."""
    tiles: str
    """URL template: ``{t}``, ``{z}``, ``{x}``, ``{y}`` to fill in (already holds ``?v=``:
    add a preset with ``&preset=``)."""
    frame: str | None
    """URL template of the whole window for period ``{t}`` as one PNG (``?v=`` included); None
    for a window too large for one image (use ``tiles``)."""
    frame_bounds_3857: list[float] | None
    """EPSG:3857 (min x, min y, max x, max y) that a frame covers."""
    frame_size: list[int] | None
    """(width, height) of a frame in pixels."""


class WindowTilesPublic(BaseModel):
    window_id: int
    name: str
    bounds: list[float]
    """WGS84 (min lon, min lat, max lon, max lat)."""
    layers: list[TileLayerPublic]
    predictions: list[PredictionLayerPublic] = []
    """Inference jobs' predictions of the window, newest first."""


# --- the render cache and cached responses --------------------------------------------------
_CACHE_LOCK = threading.Lock()


def get_tile_cache(request: Request) -> TileCache:
    """The app's render cache (made on first use from its settings)."""
    return tile_cache_of(request.app.state)


def tile_cache_of(state) -> TileCache:
    """The render cache of the app whose ``app.state`` is ``state``."""
    cache = getattr(state, "tile_cache", None)
    if cache is None:
        with _CACHE_LOCK:
            cache = getattr(state, "tile_cache", None)
            if cache is None:
                s = state.settings
                cache = state.tile_cache = TileCache(
                    Path(s.data_dir).expanduser().resolve() / "cache" / "tiles",
                    max_bytes=int(s.tile_cache_mb * 2**20),
                    memory_bytes=int(s.tile_cache_memory_mb * 2**20),
                    enabled=s.tile_cache,
                )
    return cache


async def _tile_cache(request: Request) -> TileCache:
    return get_tile_cache(request)  # async: no threadpool hop for an attribute look-up


TileCacheDep = Annotated[TileCache, Depends(_tile_cache)]
IfNoneMatch = Annotated[str | None, Header(description="An ETag of an earlier response")]
Version = Query(None, max_length=64, description="The layer's version (from the listing)")


def png_headers(key: str, fresh: bool) -> dict[str, str]:
    """``ETag`` and ``Cache-Control`` of the PNG under ``key`` (``fresh``: asked for with the
    layer's current version)."""
    return {"ETag": etag(key), "Cache-Control": IMMUTABLE if fresh else REVALIDATE}


def png_response(
    cache: TileCache,
    *,
    key: str,
    fresh: bool,
    if_none_match: str | None,
    render: Callable[[], bytes],
) -> Response:
    """The PNG under ``key``: a ``304`` when ``If-None-Match`` names it, else cached or
    ``render()``-ed. ``fresh``: the URL carried the current version (cache it for good)."""
    headers = png_headers(key, fresh)
    if etag_matches(if_none_match, key):
        return Response(status_code=304, headers=headers)
    png, hit = cache.get_or_render(key, render)
    headers["X-Tile-Cache"] = "hit" if hit else "miss"
    return Response(png, media_type="image/png", headers=headers)


async def png_response_async(
    cache: TileCache,
    *,
    key: str,
    fresh: bool,
    if_none_match: str | None,
    render: Callable[[], bytes],
) -> Response:
    """``png_response`` from an ``async`` route: a 304 or a hit in this process's memory is
    answered in the event loop; a disk read or a render runs in the threadpool."""
    from starlette.concurrency import run_in_threadpool

    if etag_matches(if_none_match, key) or (png := cache.peek(key)) is None:
        return await run_in_threadpool(
            png_response, cache, key=key, fresh=fresh, if_none_match=if_none_match, render=render
        )
    return Response(
        png, media_type="image/png", headers={**png_headers(key, fresh), "X-Tile-Cache": "hit"}
    )


@dataclass(frozen=True)
class LayerSource:
    """A window layer a request may read: the window, its layer file, that file's identity
    (``labeling.tiles.layer_identity``), its metadata and the colours of its classes."""

    window: WindowRecord
    path: Path
    identity: tuple
    meta: dict
    classes: list[dict] | None


_read_window = _window("read")


def _resolve(
    session_factory, window_id: int, layer: str, credentials: HTTPAuthorizationCredentials | None
) -> LayerSource:
    """The caller (``api.deps.get_current_user``), the window they may read (``WindowRead``'s
    check) and its layer's files, in a session of its own."""
    with session_factory() as session:
        user = get_current_user(session, credentials)
        row = _read_window(window_id, session, user)
        path, identity, meta = _layer_file(session, row, layer)
        return LayerSource(row, path, identity, meta, _classes(session, row, meta))


class AccessCache:
    """Checked read access of (key, window, layer) for ``ttl`` seconds, in one API process: a
    map shows a window as dozens of tiles a second, and each would repeat the same key, window,
    membership and dataset look-ups. Only granted access is kept; the layer's files are
    stat-ed on every use, so a re-materialised layer is seen at once.

    An entry is checked again ahead of its expiry: once between half and four fifths of the
    ttl have passed (spread at random, so the keys of a map's clients, checked together, are
    not checked again in one burst), the next request using it claims the re-check
    (``claim_refresh``), which runs in the background (``refresh_ahead``) while requests go on
    being answered from the entry. A busy key is so never checked on a request's path, and a
    revoked one is refused within the ttl, as before (sooner, once its re-check has run)."""

    def __init__(self, ttl: float, size: int = 4096):
        self.ttl, self.size = ttl, size
        self._entries: dict[tuple, list] = {}  # key -> [expires, re-check due, source]

    def get(self, key: tuple) -> LayerSource | None:
        import time

        from labeling.tiles import layer_identity, layer_info

        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        src = entry[2]
        identity = layer_identity(src.path)
        if identity == src.identity:
            return src
        if identity[0] is None or identity[2] is None:  # gone: let the full check say so
            self._entries.pop(key, None)
            return None
        fresh = LayerSource(
            src.window, src.path, identity, layer_info(src.path, identity=identity[2]), src.classes
        )
        entry[2] = fresh
        return fresh

    def put(self, key: tuple, src: LayerSource) -> None:
        import random
        import time

        if self.ttl <= 0:
            return
        now = time.monotonic()
        if len(self._entries) >= self.size:
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
            if len(self._entries) >= self.size:
                self._entries.clear()
        due = now + self.ttl * random.uniform(0.5, 0.8)
        self._entries[key] = [now + self.ttl, due, src]

    def claim_refresh(self, key: tuple) -> bool:
        """Whether the caller should re-check ``key`` now (then nobody else will)."""
        import time

        entry = self._entries.get(key)
        if entry is None or entry[1] > time.monotonic():
            return False
        entry[1] = float("inf")  # claimed
        return True

    def forget(self, key: tuple) -> None:
        self._entries.pop(key, None)


_REFRESHING: set = set()
"""Background re-checks in flight (a task is kept referenced until it ends)."""


def refresh_ahead(state, key: tuple) -> None:
    """Re-check ``key``'s access in the background when its entry is due (see
    ``AccessCache``): renewed when still granted, forgotten when not (the next request then
    takes the full check, which says why)."""
    import asyncio
    import logging

    from starlette.concurrency import run_in_threadpool

    access = access_cache_of(state)
    if not access.claim_refresh(key):
        return
    token, window_id, layer = key
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)

    async def check() -> None:
        try:
            src = await run_in_threadpool(
                _resolve, state.session_factory, window_id, layer, credentials
            )
        except Exception as e:  # refused, or the check failed: ask again on the request path
            access.forget(key)
            if not isinstance(e, PlatformError):
                logging.getLogger(__name__).warning("tile access re-check failed: %r", e)
            return
        access.put(key, src)

    task = asyncio.get_running_loop().create_task(check())
    _REFRESHING.add(task)
    task.add_done_callback(_REFRESHING.discard)


def access_cache_of(state) -> AccessCache:
    """The checked-access cache of the app whose ``app.state`` is ``state``."""
    cache = getattr(state, "tile_access", None)
    if cache is None:
        cache = state.tile_access = AccessCache(state.settings.tile_access_ttl_s)
    return cache


async def _layer_source(
    window_id: PathId,
    layer: str,
    t: int,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> LayerSource:
    """The layer a tile request may read and its period ``t``: from this process's
    ``AccessCache`` when the same key read it within ``tile_access_ttl_s``, else checked in
    the database (in the threadpool); so a cached tile costs no thread hop and no query."""
    from starlette.concurrency import run_in_threadpool

    access = access_cache_of(request.app.state)
    key = (credentials.credentials if credentials else None, window_id, layer)
    src = access.get(key)
    if src is None:
        src = await run_in_threadpool(
            _resolve, request.app.state.session_factory, window_id, layer, credentials
        )
        access.put(key, src)
    else:
        refresh_ahead(request.app.state, key)
    _period(src.meta, src.window, layer, t)
    return src


LayerRead = Annotated[LayerSource, Depends(_layer_source)]


def tile_exists(z: int, x: int, y: int) -> bool:
    return 0 <= z <= 24 and 0 <= x < 2**z and 0 <= y < 2**z


def tile_key(src: LayerSource, t: int, preset: str | None, z: int, x: int, y: int) -> str:
    """The render cache's key of tile ``z/x/y`` of period ``t`` of ``src``."""
    from labeling.tile_cache import cache_key, digest

    return cache_key(
        "tile",
        src.identity,
        t=t,
        preset=preset,
        z=z,
        x=x,
        y=y,
        size=TILE_SIZE,
        colours=digest(src.classes),
    )


def frame_key(src: LayerSource, t: int, preset: str | None) -> str:
    """The render cache's key of the frame of period ``t`` of ``src``."""
    from labeling.tile_cache import cache_key, digest

    return cache_key("frame", src.identity, t=t, preset=preset, colours=digest(src.classes))


def period_exists(meta: dict, t: int) -> bool:
    """Whether the layer of ``meta`` (its JSON) has period ``t``."""
    return 0 <= t < int(meta["shape"][0])


# --- a window's layers ----------------------------------------------------------------------
@lru_cache(maxsize=256)
def _dataset(root: str):
    """The dataset at ``root`` (kept: opening one resolves its file system)."""
    from earthplat.data.dataset import Dataset

    return Dataset(root)


def _root(session, window: WindowRecord) -> str:
    """The root of the dataset holding ``window``."""
    return session.get(DatasetRecord, window.dataset_id).path


def _layer_file(session, window: WindowRecord, layer: str):
    """``(LAYER.tif, its files' identity, its metadata)``; 404 for a layer the window lacks."""
    from labeling.tiles import layer_identity, layer_info

    ds = _dataset(_root(session, window))
    path = Path(ds.layer_path(window.name, layer))
    identity = layer_identity(path)
    if identity[0] is None or identity[2] is None:
        have = ds.layers(window.name)
        raise NotFoundError(
            f"window {window.id} ({window.name}) has no layer {layer!r}; it has "
            f"{', '.join(have) or 'none yet'}",
            fix="materialise the layer first (a materialize job)",
        )
    return path, identity, layer_info(path, identity=identity[2])


def _period(meta: dict, window: WindowRecord, layer: str, t: int) -> None:
    if not period_exists(meta, t):
        n = int(meta["shape"][0])
        raise NotFoundError(
            f"layer {layer!r} of window {window.id} has {n} period(s); there is no t={t}",
            fix=f"use t from 0 to {n - 1}",
        )


def _classes(session, window: WindowRecord, meta: dict) -> list[dict] | None:
    """The project's class colours for a label layer (they are part of the cache key)."""
    project = session.get(Project, window.project_id)  # loaded by the permission check
    return project.classes if meta["modality"] == "label" and project.classes else None


@router.get("/tiles/{window_id}", response_model=WindowTilesPublic)
def read_window_tiles(row: WindowRead, session: SessionDep, settings: SettingsDep):
    """The window's materialised layers with their periods (dates, acquisitions, valid share),
    presets, version and tile/frame URLs, and its predictions."""
    from api.routes.predictions import prediction_layers
    from earthplat.sensors import get_modality
    from labeling.tiles import (
        frame_geometry,
        layer_identity,
        layer_info,
        layer_version,
        period_acquisitions,
        presets,
    )

    ds = _dataset(_root(session, row))
    layers = []
    for name in ds.layers(row.name):
        path = ds.layer_path(row.name, name)
        meta = layer_info(path)
        version = layer_version(layer_identity(path))
        frame = frame_geometry(meta)
        base = f"/api/v1/tiles/{row.id}/{name}"
        layers.append(
            TileLayerPublic(
                name=name,
                modality=meta["modality"],
                categorical=get_modality(meta["modality"]).categorical,
                bands=meta["bands"],
                periods=meta["periods"],
                missing_periods=meta.get("missing_periods", []),
                valid_fraction=meta.get("valid_fraction", []),
                acquired=period_acquisitions(path, meta),
                presets=presets(meta["modality"]),
                version=version,
                tiles=f"{base}/{{t}}/{{z}}/{{x}}/{{y}}.png?v={version}",
                frame=f"{base}/frame/{{t}}.png?v={version}" if frame else None,
                frame_bounds_3857=frame[0] if frame else None,
                frame_size=[frame[1], frame[2]] if frame else None,
            )
        )
    from shapely.geometry import shape

    bounds = list(shape(row.geometry).bounds)
    return WindowTilesPublic(
        window_id=row.id,
        name=row.name,
        bounds=bounds,
        layers=layers,
        predictions=prediction_layers(session, window=row, data_dir=settings.data_dir),
    )


@router.get(
    "/tiles/{window_id}/{layer}/{t}/{z}/{x}/{y}.png", response_class=Response, responses=PNG
)
async def read_tile(
    src: LayerRead,
    z: int,
    x: int,
    y: int,
    cache: TileCacheDep,
    if_none_match: IfNoneMatch = None,
    preset: str | None = Query(None, max_length=64, description="Composite of the registry"),
    v: str | None = Version,
    t: int = FastPath(description="The period"),
) -> Response:
    """Tile ``z/x/y`` of period ``t`` of a layer of the window."""
    from labeling.tiles import layer_version, render_tile

    if not tile_exists(z, x, y):
        raise InvalidInputError(f"tile {z}/{x}/{y} does not exist", fix="0 <= x, y < 2**z")
    key = tile_key(src, t, preset, z, x, y)
    return await png_response_async(
        cache,
        key=key,
        fresh=v == layer_version(src.identity),
        if_none_match=if_none_match,
        render=lambda: render_tile(
            src.path, t=t, z=z, x=x, y=y, preset=preset, size=TILE_SIZE, classes=src.classes
        ),
    )


@router.get("/tiles/{window_id}/{layer}/frame/{t}.png", response_class=Response, responses=PNG)
async def read_frame(
    src: LayerRead,
    cache: TileCacheDep,
    if_none_match: IfNoneMatch = None,
    preset: str | None = Query(None, max_length=64, description="Composite of the registry"),
    v: str | None = Version,
    t: int = FastPath(description="The period"),
) -> Response:
    """The whole window for period ``t`` of a layer as one EPSG:3857 PNG over the listing's
    ``frame_bounds_3857``; 422 for a window too large for one image."""
    from labeling.tiles import FRAME_MAX_PIXELS, frame_geometry, layer_version, render_frame

    if frame_geometry(src.meta) is None:
        shape = src.meta["shape"]
        raise InvalidInputError(
            f"window {src.window.id} is {shape[3]} x {shape[2]} px, more than one frame holds "
            f"({FRAME_MAX_PIXELS} px)",
            fix="show it as XYZ tiles (the listing's 'tiles' template)",
        )
    key = frame_key(src, t, preset)
    return await png_response_async(
        cache,
        key=key,
        fresh=v == layer_version(src.identity),
        if_none_match=if_none_match,
        render=lambda: render_frame(src.path, t=t, preset=preset, classes=src.classes),
    )
