"""SQLite engine set-up: WAL, foreign keys, busy timeout, writer transactions, aware datetimes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

from api.database import begin_write, make_engine, make_session_factory
from labeling.db import UTCDateTime


def test_sqlite_pragmas(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 60000
    engine.dispose()


def test_begin_write_takes_the_write_lock(tmp_path):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    factory = make_session_factory(engine)
    writer = factory()
    begin_write(writer)  # BEGIN IMMEDIATE: holds the lock before any statement
    import sqlite3

    other = sqlite3.connect(tmp_path / "b.db", timeout=0.1, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        other.execute("BEGIN IMMEDIATE")
    writer.rollback()
    other.execute("BEGIN IMMEDIATE")  # free again
    other.execute("ROLLBACK")
    # a reader does not take it
    reader = factory()
    reader.execute(text("SELECT count(*) FROM t"))
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    reader.close()
    writer.close()
    engine.dispose()


def test_utc_datetime_round_trip(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    meta = MetaData()
    table = Table("d", meta, Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))
    meta.create_all(engine)
    plus2 = datetime(2020, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as conn:
        conn.execute(insert(table), [{"at": plus2}, {"at": datetime(2020, 1, 1)}])
    with engine.connect() as conn:
        got = conn.execute(select(table.c.at).order_by(table.c.id)).scalars().all()
    assert got[0] == plus2 and got[0].utcoffset() == timedelta(0)
    assert got[1].tzinfo is not None and got[1].hour == 0
    engine.dispose()
