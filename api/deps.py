"""Dependencies as ``Annotated`` aliases: ``SettingsDep``, ``SessionDep``, ``CurrentUser``, and a
path's resource after the caller's project role is checked (``WindowRead``, ``WindowLabel``,
``WindowReview``, ``AnnotationRead``, ``AnnotationLabel``)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.auth import authenticate
from api.database import begin_write
from api.settings import Settings
from labeling.models import User

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
MAX_ID = 2**31 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="A resource id")]
"""Path ids are positive 32-bit integers (larger ones cannot exist, and would overflow SQLite)."""
bearer = HTTPBearer(auto_error=False, description="An API key: 'Authorization: Bearer ep_...'")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


_loop_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _writer_lock() -> asyncio.Lock:
    """The SQLite writer queue of the running event loop (one per loop: TestClient may run a
    loop per request)."""
    loop = asyncio.get_running_loop()
    lock = _loop_locks.get(loop)
    if lock is None:
        lock = _loop_locks[loop] = asyncio.Lock()
    return lock


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request. On SQLite a mutating request's transaction is a writer from the
    start (``BEGIN IMMEDIATE``, see ``api.database``), and writers queue on an asyncio lock
    before taking a connection: SQLite allows one writer anyway, its busy handler polls with
    sleeps of up to 100 ms (slow hand-over under contention), and waiting in the event loop
    holds no worker thread (a thread lock would starve the threadpool and deadlock)."""
    serialise = request.app.state.sqlite and request.method in MUTATING
    lock = _writer_lock() if serialise else None
    if lock is not None:
        await lock.acquire()
    try:
        session = request.app.state.session_factory()
        try:
            if lock is not None:
                # BEGIN IMMEDIATE may wait for another process (a job worker): not in the loop
                await anyio.to_thread.run_sync(begin_write, session)
            yield session
        finally:
            await anyio.to_thread.run_sync(session.close)
    finally:
        if lock is not None:
            lock.release()


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_current_user(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    return authenticate(session, key=credentials.credentials if credentials else None)


CurrentUser = Annotated[User, Depends(get_current_user)]


# --- a resource, after checking the caller may act on its project --------------------------
def _window(permission: str):
    from api import auth
    from labeling.models import WindowRecord
    from labeling.services.windows import get_window

    def window(window_id: PathId, session: SessionDep, user: CurrentUser) -> WindowRecord:
        found = get_window(session, window_id=window_id)
        auth.require(session, user=user, project_id=found.project_id, permission=permission)
        return found

    return window


def _annotation(permission: str):
    from api import auth
    from labeling.models import Annotation
    from labeling.services.annotations import get_annotation

    def annotation(annotation_id: PathId, session: SessionDep, user: CurrentUser) -> Annotation:
        found = get_annotation(session, annotation_id=annotation_id)
        auth.require(session, user=user, project_id=found.project_id, permission=permission)
        return found

    return annotation


WindowRead = Annotated[Any, Depends(_window("read"))]
"""The path's window (``window_id``), which the caller may read (404 / 403 otherwise)."""
WindowLabel = Annotated[Any, Depends(_window("label"))]
"""The path's window, which the caller may label."""
WindowReview = Annotated[Any, Depends(_window("review"))]
"""The path's window, which the caller may review."""
WindowManage = Annotated[Any, Depends(_window("manage"))]
"""The path's window, in a project the caller manages (jobs over it)."""
AnnotationRead = Annotated[Any, Depends(_annotation("read"))]
"""The path's annotation (``annotation_id``), which the caller may read."""
AnnotationLabel = Annotated[Any, Depends(_annotation("label"))]
"""The path's annotation, which the caller may change."""
