"""The app factory: ``uvicorn --factory api.main:create_app`` (or ``python -m api.main``).

Environment: ``EARTHPLAT_DATA_DIR`` (files and the default SQLite database),
``EARTHPLAT_DATABASE_URL`` (``postgresql+psycopg://...`` for PostgreSQL), ``EARTHPLAT_ADMIN_KEY``
(bootstrap admin key; without it a key is generated and printed on the first start),
``EARTHPLAT_MAX_UPLOAD_MB``; see ``api.settings.Settings``.

``create_app`` reads ``Settings`` from the environment (or takes them), upgrades the database to
the latest migration, makes sure an admin can log in (printing a generated bootstrap key on the
first start), and mounts every router under ``/api/v1`` plus Prometheus ``/metrics``.
"""

from __future__ import annotations

import logging
import sys
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from api import auth
from api.database import (
    begin_write,
    import_models,
    is_sqlite,
    make_engine,
    make_session_factory,
    upgrade,
)
from api.deps import SessionDep
from api.errors import install_handlers
from api.metrics import MetricsMiddleware, metrics_response
from api.routes import (
    collection,
    context,
    export,
    finetune,
    inference,
    jobs,
    labeling,
    models,
    predictions,
    projects,
    similarity,
    tiles,
    users,
)
from api.settings import Settings
from api.tile_shortcut import TileShortcut
from api.web import mount_docs, mount_web

API_PREFIX = "/api/v1"
log = logging.getLogger("earthplat.api")


_FROZEN = False


def freeze_startup_objects() -> None:
    """Once per process, at the first app's start-up: take what start-up made (the modules,
    the tile renderer's among them, and the app) out of the cyclic garbage collector's reach
    (``gc.freeze``). A full collection then walks only what requests made since: about 8 ms
    instead of 120-170 ms, a pause that held up every request of the worker (measured with
    cached tiles at 50 clients, ``bench/api_latency.py``)."""
    import gc
    import importlib

    global _FROZEN
    if _FROZEN:
        return
    for module in ("labeling.tiles", "rio_tiler.io"):  # the first tile would import them
        importlib.import_module(module)
    gc.collect()
    gc.freeze()
    _FROZEN = True


@asynccontextmanager
async def _lifespan(app: FastAPI):
    freeze_startup_objects()
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    import_models()
    if settings.migrate:
        upgrade(url)
    engine = make_engine(url)
    session_factory = make_session_factory(engine)
    with session_factory() as session:
        # a reader that then writes: BEGIN IMMEDIATE, so a worker writing meanwhile makes it
        # wait (busy timeout) instead of failing with "database is locked" on SQLite
        begin_write(session)
        key = auth.bootstrap_admin(session, admin_key=settings.admin_key)
    if key:
        print(
            f"earthplat: created user 'admin' with API key {key}\n"
            "  (shown once; store it, or set EARTHPLAT_ADMIN_KEY)",
            file=sys.stderr,
            flush=True,
        )

    app = FastAPI(
        title="earthplat",
        version="0.1.0",
        description="Earth-observation data collection, labelling, fine-tuning and inference.",
        docs_url=None,  # /docs is served from the local build (mount_docs), not from a CDN
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.sqlite = is_sqlite(url)
    app.state.bootstrap_key = key
    registry = CollectorRegistry()
    app.add_middleware(TileShortcut, state=app.state)  # inside the metrics: they count it
    app.add_middleware(MetricsMiddleware, registry=registry)
    install_handlers(app)

    health = APIRouter(tags=["operations"])

    @health.get("/health")
    def read_health(session: SessionDep) -> dict:
        """Liveness and database reachability."""
        session.execute(text("SELECT 1"))
        return {"status": "ok", "database": engine.dialect.name}

    app.include_router(health, prefix=API_PREFIX)
    for module in (users, projects, collection, labeling, export, models, predictions):
        app.include_router(module.router, prefix=API_PREFIX)
    # the jobs/tiles side; context before tiles: its /tiles/{w}/{layer}/context/... tile
    # paths would otherwise be taken by the tile route's {t}
    for module in (jobs, finetune, context, tiles, inference, similarity):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.get("/metrics", include_in_schema=False)
    def read_metrics():
        return metrics_response(registry)

    mount_docs(app)
    mount_web(app)  # last: the UI's files must not shadow the API
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the API with uvicorn (``python -m api.main [--host H] [--port P]``). With several
    workers every process serialises its own SQLite writers; use PostgreSQL for more than one."""
    import uvicorn

    uvicorn.run("api.main:create_app", factory=True, host=host, port=port, workers=workers)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Serve the earthplat API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    serve(args.host, args.port, args.workers)
