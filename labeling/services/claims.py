"""Claims on windows: who may write to a labelling task.

A labeller claims a window by taking it (``tasks/next``), by claiming it directly, or by
writing to a free window. While the claim lasts (``locked_until``) every write by someone else
(annotations, submit) is refused with 423, naming the holder and the claim's end; submitting
needs the caller's own current claim. A claim ends when the task is submitted, released, or
skipped, or when its time runs out. Each claim is one conditional UPDATE on "free, expired or
already mine", so two people can never both hold a window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from labeling.db import utcnow
from labeling.models import TaskSkip, User, WindowRecord
from labeling.services.errors import ConflictError, LockedError, NotFoundError

OPEN = ("unlabeled", "in_progress", "rejected")
"""Statuses of windows that are still to be labelled (and so can be claimed)."""


def free_for(user_id: int, now: datetime):
    """SQL condition: the window is unclaimed, its claim ran out, or the user holds it."""
    return or_(
        WindowRecord.locked_by.is_(None),
        WindowRecord.locked_by == user_id,
        WindowRecord.locked_until < now,
    )


def refusal(session: Session, window: WindowRecord, action: str) -> LockedError:
    holder = session.get(User, window.locked_by) if window.locked_by else None
    name = holder.name if holder else f"user {window.locked_by}"
    until = window.locked_until.isoformat(timespec="seconds") if window.locked_until else "?"
    return LockedError(
        f"window {window.id} is claimed by {name} until {until}; you cannot {action} it",
        fix="take another task (POST /projects/{id}/tasks/next), ask them to release it, or "
        "wait for the claim to end",
    )


def claim(session: Session, *, window_id: int, user_id: int, minutes: float) -> WindowRecord:
    """Claim (or extend the caller's claim on) an open window, which puts it in progress as
    ``tasks/next`` does; 423 if someone else holds it."""
    now = utcnow()
    result = session.execute(
        update(WindowRecord)
        .where(
            WindowRecord.id == window_id,
            WindowRecord.status.in_(OPEN),
            free_for(user_id, now),
        )
        .values(
            locked_by=user_id,
            locked_until=now + timedelta(minutes=minutes),
            status="in_progress",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        window = session.get(WindowRecord, window_id, populate_existing=True)
        if window is None:
            raise NotFoundError(f"no window {window_id}")
        if window.status not in OPEN:
            raise ConflictError(
                f"window {window_id} is {window.status}; only a window still to be labelled "
                f"({', '.join(OPEN)}) can be claimed"
            )
        raise refusal(session, window, "claim")
    session.commit()
    return session.get(WindowRecord, window_id, populate_existing=True)


def require_claim(
    session: Session, *, window: WindowRecord, user_id: int, minutes: float, action: str
) -> None:
    """Before a write: the caller holds the window's claim (taking it when the window is free,
    extending it when it is theirs); 423 when someone else holds it. Does not commit."""
    now = utcnow()
    result = session.execute(
        update(WindowRecord)
        .where(WindowRecord.id == window.id, free_for(user_id, now))
        .values(locked_by=user_id, locked_until=now + timedelta(minutes=minutes))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        session.refresh(window)
        raise refusal(session, window, action)


def holds_claim(session: Session, *, window_id: int, user_id: int) -> bool:
    """The caller holds a current claim on the window."""
    return (
        session.scalar(
            select(WindowRecord.id).where(
                WindowRecord.id == window_id,
                WindowRecord.locked_by == user_id,
                WindowRecord.locked_until >= utcnow(),
            )
        )
        is not None
    )


def release(session: Session, *, window_id: int, user_id: int, force: bool = False) -> WindowRecord:
    """End the caller's claim (``force``: a manager ends anyone's). Releasing a window nobody
    holds is a no-op; one held by someone else is a 423."""
    window = session.get(WindowRecord, window_id)
    if window is None:
        raise NotFoundError(f"no window {window_id}")
    held = window.locked_by is not None and window.locked_until and window.locked_until >= utcnow()
    if held and window.locked_by != user_id and not force:
        raise refusal(session, window, "release")
    session.execute(
        update(WindowRecord)
        .where(WindowRecord.id == window_id)
        .values(locked_by=None, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return session.get(WindowRecord, window_id, populate_existing=True)


def skip(session: Session, *, window_id: int, user_id: int) -> WindowRecord:
    """Skip a task: release the caller's claim and hand the window to them again only when
    nothing else is left."""
    window = release(session, window_id=window_id, user_id=user_id)
    if (
        session.scalar(
            select(TaskSkip.id).where(TaskSkip.window_id == window_id, TaskSkip.user_id == user_id)
        )
        is None
    ):
        session.add(TaskSkip(window_id=window_id, user_id=user_id))
        session.commit()
    return window


def forget_skips(session: Session, *, window_id: int) -> None:
    """The window was submitted: earlier skips no longer matter. Does not commit."""
    session.execute(delete(TaskSkip).where(TaskSkip.window_id == window_id))
