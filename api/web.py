"""The browser UI: ``labeling/web/dist`` (built by ``make web``) served at ``/``.

Only what the build holds is routed: ``/`` (``index.html``), each top-level file, and each
top-level directory (``/assets/...``) as static files. Nothing is mounted at ``/`` itself, so
the API keeps its own answers everywhere else (404s, 405s, trailing-slash redirects); the UI
uses hash routing and needs no server routes.
``EARTHPLAT_WEB_DIST`` points elsewhere (e.g. a UI built in a container stage). Without a
build, ``/`` answers a JSON ``{detail, fix}`` that says how to build it.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

DEFAULT_DIST = Path(__file__).resolve().parents[1] / "labeling" / "web" / "dist"


def web_dist() -> Path:
    """Where the built UI lives: ``EARTHPLAT_WEB_DIST``, else ``labeling/web/dist``."""
    env = os.environ.get("EARTHPLAT_WEB_DIST")
    return Path(env).expanduser() if env else DEFAULT_DIST


def mount_web(app: FastAPI, dist: Path | None = None) -> bool:
    """Serve the built UI at ``/`` (call after every router); returns whether it was found."""
    dist = dist or web_dist()
    if (dist / "index.html").is_file():
        taken = {getattr(r, "path", None) for r in app.routes}
        for item in sorted(dist.iterdir()):
            route = "/" if item.name == "index.html" else f"/{item.name}"
            if route in taken or item.name.startswith("."):
                continue  # never shadow an API route
            if item.is_dir():
                app.mount(route, StaticFiles(directory=item), name=f"web-{item.name}")
            elif item.is_file():
                app.add_api_route(route, _file_route(item), include_in_schema=False)
        return True

    @app.get("/", include_in_schema=False)
    def web_missing() -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content={
                "detail": f"the web UI is not built ({dist / 'index.html'} is missing)",
                "fix": "run `make web` (npm ci and npm run build in labeling/web), then restart; "
                "the API itself is at /api/v1 and /docs",
            },
        )

    return False


def _file_route(path: Path):
    def serve() -> FileResponse:
        return FileResponse(path)

    return serve
