"""The browser UI: ``labeling/web/dist`` (built by ``make web``) served at ``/``.

The built files are mounted last, so ``/api/v1``, ``/docs``, ``/metrics`` and the API's own
routes win; everything else is a file of the UI (hash routing: the UI needs no server routes).
``EARTHPLAT_WEB_DIST`` points elsewhere (e.g. a UI built in a container stage). Without a
build, ``/`` answers a JSON ``{detail, fix}`` that says how to build it.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
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
        app.mount("/", StaticFiles(directory=dist, html=True), name="web")
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
