"""A SQLite session with every table (create_all; the migrations are tested in
tests/integration/platform/test_postgres.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def session(tmp_path):
    from api.database import import_models, make_engine, make_session_factory
    from labeling.db import Base

    import_models()
    engine = make_engine(f"sqlite:///{tmp_path / 'unit.db'}")
    Base.metadata.create_all(engine)
    with make_session_factory(engine)() as s:
        yield s
    engine.dispose()


@pytest.fixture
def project(session):
    from api.auth import create_user
    from labeling.services.projects import create_project

    owner = create_user(session, name="owner", is_admin=True)
    return create_project(
        session,
        owner=owner,
        name="p",
        task_type="segmentation",
        classes=[{"value": 0, "label": "land", "color": "#00ff00"}, {"value": 3, "label": "water"}],
    )


@pytest.fixture
def windows(session, project, tmp_path):
    from labeling.services import windows as svc

    built = svc.build_windows(
        "aoi",
        max_windows=100,
        aoi=[-0.77, 38.09, -0.75, 38.11],
        start="2020-01-01",
        end="2020-02-01",
        size=64,
        resolution=10.0,
    )
    record = svc.get_dataset(session, project_id=project.id, name="d", project_dir=tmp_path)
    rows, _ = svc.add_windows(
        session, project=project, dataset=record, windows=built, skip_existing=False
    )
    return rows
