"""Migrations on an empty SQLite file and an empty PostgreSQL schema: ``upgrade head`` yields
exactly the tables of the models (Alembic's comparison finds no difference), and the PostgreSQL
fixture really isolates each test in its own schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from api.database import import_models, make_engine, upgrade
from labeling.db import Base

EXPECTED = {
    "users",
    "api_keys",
    "projects",
    "project_members",
    "datasets",
    "windows",
    "layers",
    "annotations",
    "reviews",
    "assignments",
    "models",
    "jobs",
}


def test_upgrade_head_matches_models(db_url):
    import_models()
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert tables >= EXPECTED
            assert tables - {"alembic_version"} == set(Base.metadata.tables)
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
            assert diff == [], diff
            heads = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            assert len(heads) == 1
        upgrade(db_url)  # idempotent
    finally:
        engine.dispose()


def test_schema_isolation(db_url):
    """Two apps on the same URL share data; the PostgreSQL fixture's schema is private."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE probe (x INTEGER)"))
            conn.execute(text("INSERT INTO probe VALUES (1)"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM probe")).scalar() == 1
            if engine.dialect.name == "postgresql":
                schema = conn.execute(text("SELECT current_schema()")).scalar()
                assert schema.startswith("test_")
    finally:
        engine.dispose()
