"""The browser UI: ``labeling/web/dist`` (built by ``make web``) served at ``/``.

Only what the build holds is routed: ``/`` (``index.html``), each top-level file, and each
top-level directory (``/assets/...``) as static files. Nothing is mounted at ``/`` itself, so
the API keeps its own answers everywhere else (404s, 405s, trailing-slash redirects); the UI
uses hash routing and needs no server routes.
``EARTHPLAT_WEB_DIST`` points elsewhere (e.g. a UI built in a container stage). Without a
build, ``/`` answers a JSON ``{detail, fix}`` that says how to build it.

``/docs`` (Swagger UI) is served from the same build: the Vite build copies ``swagger-ui-dist``'s
files into ``dist/swagger/`` (``labeling/web/vite.config.js``), so the page loads nothing from a
CDN and works offline. Without them, ``/docs`` answers a ``{detail, fix}`` too; ``/openapi.json``
is there either way.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

DEFAULT_DIST = Path(__file__).resolve().parents[1] / "labeling" / "web" / "dist"
SWAGGER_DIR = "swagger"
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
"""What ``/docs`` loads from ``dist/swagger/`` (copied there by the Vite build)."""


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


def mount_docs(app: FastAPI, dist: Path | None = None) -> bool:
    """Serve Swagger UI at ``/docs`` from ``dist/swagger/`` (make the app with ``docs_url=None,
    redoc_url=None``; call before ``mount_web``); returns whether the assets were found."""
    dist = dist or web_dist()
    assets = dist / SWAGGER_DIR
    missing = [name for name in SWAGGER_FILES if not (assets / name).is_file()]
    if missing:

        @app.get("/docs", include_in_schema=False)
        def docs_missing() -> JSONResponse:
            return JSONResponse(
                status_code=503,
                content={
                    "detail": f"the API docs page is not built ({assets / missing[0]} is missing)",
                    "fix": "run `make web` (it copies Swagger UI into labeling/web/dist/swagger), "
                    f"then restart; the OpenAPI schema itself is at {app.openapi_url}",
                },
            )

        return False

    app.mount(f"/{SWAGGER_DIR}", StaticFiles(directory=assets), name="web-swagger")

    @app.get("/docs", include_in_schema=False)
    def read_docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        static = f"{root}/{SWAGGER_DIR}"
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{static}/swagger-ui-bundle.js",
            swagger_css_url=f"{static}/swagger-ui.css",
            swagger_favicon_url=f"{static}/favicon-32x32.png",
            # no online spec validator: the page must not reach outside the machine
            swagger_ui_parameters={"validatorUrl": None},
        )

    return True


def _file_route(path: Path):
    def serve() -> FileResponse:
        return FileResponse(path)

    return serve
