"""The platform database: the declarative ``Base``, engines, sessions and migrations.

SQLite (a file in the data dir) is the default; PostgreSQL is used when the URL names it.
SQLite connections run in WAL mode with foreign keys on and a busy timeout, and a session opened
for writing starts its transaction with ``BEGIN IMMEDIATE``: a transaction that reads and then
writes would otherwise fail with ``SQLITE_BUSY`` (not retried by the busy handler) when another
writer committed in between. PostgreSQL needs none of this: the conditional
``UPDATE ... WHERE version = :v`` used for optimistic concurrency re-checks its condition after a
concurrent commit, so it is race-free at READ COMMITTED.

Every ORM model (``labeling.models``, ``labeling.jobs``) derives from ``labeling.db.Base``;
:func:`import_models` imports them so that ``Base.metadata`` is complete.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MODEL_MODULES = ("labeling.models", "labeling.jobs")
"""Modules defining ORM models (all on ``labeling.db.Base``)."""


def import_models() -> None:
    """Import every module that defines tables, so ``Base.metadata`` knows all of them."""
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is None or not name.startswith(e.name):
                raise


def is_sqlite(url: str) -> bool:
    return str(url).startswith("sqlite")


def make_engine(url: str, *, echo: bool = False, pool_size: int = 20) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout and immediate
    write transactions (see the module docs)."""
    if is_sqlite(url):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=pool_size,
            max_overflow=40,
            pool_timeout=60,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:
            immediate = conn.get_execution_options().get("sqlite_immediate", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=40, pool_pre_ping=True, pool_timeout=60
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


def begin_write(session: Session) -> None:
    """Mark ``session``'s next transaction as a writer (``BEGIN IMMEDIATE`` on SQLite); call it
    before the first statement."""
    session.connection(execution_options={"sqlite_immediate": True})


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run the Alembic migrations on ``url`` up to ``revision``."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def sqlite_url_for(data_dir: str | Path) -> str:
    path = Path(data_dir).expanduser().resolve() / "earthplat.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"
