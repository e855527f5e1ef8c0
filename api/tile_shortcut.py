"""The short way for the requests a map sends most: a tile or frame this process can answer
from memory, before FastAPI routes it.

A window map asks for dozens of tiles a second per labeller, nearly all of them already
rendered. Through FastAPI each one costs the route match over every router, dependency
injection, parameter validation and the exception layers, several times the work of the
answer itself. ``TileShortcut`` is a pure ASGI middleware that answers a ``GET`` of
``/api/v1/tiles/{window}/{layer}/{t}/{z}/{x}/{y}.png`` or ``.../frame/{t}.png`` itself when
all of these hold, and otherwise passes the request on unchanged:

- the caller's read access to the window's layer was checked within ``tile_access_ttl_s`` in
  this process (``api.routes.tiles.AccessCache``, whose entries the routes fill; the layer's
  files are stat-ed on every use, so a re-materialised layer is seen at once);
- the period and the tile exist, and the query is what the route accepts;
- the PNG is in this process's memory cache, or ``If-None-Match`` names it (a ``304``).

It answers with what the route would: the same cache key, ``ETag``, ``Cache-Control`` and
``X-Tile-Cache: hit``, from the same helpers of ``api.routes.tiles``. It sets the route in the
scope, so the metrics count these requests under the route's template. A miss of any kind
(first request, expired access, a frame too large to exist, a bad parameter) goes through
FastAPI, which renders, checks, or says what is wrong.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.responses import Response

from api.routes import tiles
from labeling.tile_cache import etag_matches

_PATH = re.compile(
    r"^/api/v1/tiles/(?P<window>[0-9]+)/(?P<layer>[^/]+)/"
    r"(?:(?P<t>[0-9]+)/(?P<z>[0-9]+)/(?P<x>[0-9]+)/(?P<y>[0-9]+)|frame/(?P<ft>[0-9]+))\.png$"
)
_MAX_QUERY = 64  # the routes' max_length of preset and v


class TileShortcut:
    """See the module docstring; ``answered`` counts the requests it answered itself."""

    def __init__(self, app, state) -> None:
        self.app, self.state = app, state
        self.enabled = True
        self.answered = 0
        self._routes: dict[str, object] | None = None
        state.tile_shortcut = self

    async def __call__(self, scope, receive, send) -> None:
        if self.enabled and scope["type"] == "http" and scope["method"] == "GET":
            match = _PATH.match(scope["path"])
            if match is not None:
                answer = self._answer(scope, match)
                if answer is not None:
                    self.answered += 1
                    await answer(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _answer(self, scope, match: re.Match) -> Response | None:
        """The response, or None to let the route answer."""
        token = _bearer(_header(scope, b"authorization"))
        layer = match["layer"]
        if token is None or layer == "predictions":  # the predictions' own tile route
            return None
        query = _query(scope["query_string"])
        if query is None:
            return None
        key = (token, int(match["window"]), layer)
        src = tiles.access_cache_of(self.state).get(key)
        if src is None:
            return None
        tiles.refresh_ahead(self.state, key)
        frame = match["ft"] is not None
        t = int(match["ft"] if frame else match["t"])
        if not tiles.period_exists(src.meta, t):
            return None
        preset = query.get("preset")
        if frame:
            from labeling.tiles import frame_geometry

            if frame_geometry(src.meta) is None:  # too large for a frame: the route says so
                return None
            png_key = tiles.frame_key(src, t, preset)
        else:
            z, x, y = int(match["z"]), int(match["x"]), int(match["y"])
            if not tiles.tile_exists(z, x, y):
                return None
            png_key = tiles.tile_key(src, t, preset, z, x, y)
        from labeling.tiles import layer_version  # rio-tiler: imported once the routes run

        fresh = query.get("v") == layer_version(src.identity)
        if_none_match = _header(scope, b"if-none-match")
        if etag_matches(if_none_match, png_key):
            response = Response(status_code=304, headers=tiles.png_headers(png_key, fresh))
        elif (png := tiles.tile_cache_of(self.state).peek(png_key)) is not None:
            response = Response(
                png,
                media_type="image/png",
                headers={**tiles.png_headers(png_key, fresh), "X-Tile-Cache": "hit"},
            )
        else:
            return None
        scope["route"] = self._route(scope, "frame" if frame else "tile")
        return response

    def _route(self, scope, kind: str):
        """The route this request stands for (the metrics label requests by its template)."""
        if self._routes is None:
            from fastapi.routing import iter_route_contexts

            found = {}
            for context in iter_route_contexts(scope["app"].routes):
                endpoint = getattr(context.original_route, "endpoint", None)
                if endpoint is tiles.read_tile:
                    found["tile"] = context.original_route
                elif endpoint is tiles.read_frame:
                    found["frame"] = context.original_route
            self._routes = found
        return self._routes.get(kind)


def _header(scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), as Starlette's ``headers.get``."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _bearer(value: str | None) -> str | None:
    """The key of ``Authorization: Bearer KEY``, read as ``fastapi.security.HTTPBearer`` does."""
    if not value:
        return None
    scheme, _, key = value.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def _query(raw: bytes) -> dict[str, str] | None:
    """``preset`` and ``v`` of the query string; None where the route would refuse it."""
    out = {}
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if name in ("preset", "v"):
            if len(value) > _MAX_QUERY or name in out:
                return None  # too long (the route says 422), or given twice (it takes the last)
            out[name] = value
    return out
