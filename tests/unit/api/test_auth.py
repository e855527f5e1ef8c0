"""API keys, bootstrap and role checks (api.auth)."""

from __future__ import annotations

import pytest

from api import auth
from labeling.services.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)


@pytest.fixture
def session(tmp_path):
    from api.database import import_models, make_engine, make_session_factory
    from labeling.db import Base

    import_models()
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    Base.metadata.create_all(engine)
    with make_session_factory(engine)() as s:
        yield s
    engine.dispose()


def test_keys():
    a, b = auth.generate_key(), auth.generate_key()
    assert a != b and a.startswith("ep_") and len(a) == 46
    assert auth.hash_key(a) == auth.hash_key(a) != auth.hash_key(b)
    assert len(auth.hash_key(a)) == 64


def test_bootstrap_generated(session):
    key = auth.bootstrap_admin(session, admin_key=None)
    assert key and auth.authenticate(session, key=key).is_admin
    assert auth.bootstrap_admin(session, admin_key=None) is None  # only on an empty table
    with pytest.raises(AuthenticationError, match="not valid"):
        auth.authenticate(session, key="ep_wrong")
    with pytest.raises(AuthenticationError, match="none"):
        auth.authenticate(session, key=None)


def test_bootstrap_from_env(session):
    key = "ep_from_the_environment_0123"
    assert auth.bootstrap_admin(session, admin_key=key) is None
    assert auth.authenticate(session, key=key).name == "admin"
    auth.bootstrap_admin(session, admin_key=key)  # idempotent
    with pytest.raises(InvalidInputError, match="shorter"):
        auth.bootstrap_admin(session, admin_key="short")


def test_roles(session):
    from labeling.services.projects import create_project, set_member

    admin = auth.create_user(session, name="root", is_admin=True)
    lab = auth.create_user(session, name="lab")
    pid = create_project(session, owner=admin, name="p", task_type="embedding").id
    set_member(session, project_id=pid, user_id=lab.id, role="labeler")
    assert auth.require(session, user=lab, project_id=pid, permission="label") == "labeler"
    with pytest.raises(PermissionDeniedError, match="'review' needs one of admin, reviewer"):
        auth.require(session, user=lab, project_id=pid, permission="review")
    with pytest.raises(NotFoundError):
        auth.require(session, user=lab, project_id=pid + 1, permission="read")
    assert auth.require(session, user=admin, project_id=pid, permission="manage") == "admin"
