"""Assignments and handing out the next task.

A window with assignments goes only to its assignees; one without goes to anyone. ``next_task``
prefers a task the caller already holds, then ones they have not skipped, then tasks assigned to
them, then windows whose imagery is valid over at least the project's ``min_valid_fraction``
(unknown counts as valid), and claims it with a conditional UPDATE (free, expired, or already the
caller's), so two labellers asking at once never get the same task.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, case, exists, or_, select, update
from sqlalchemy.orm import Session

from labeling.db import utcnow
from labeling.models import PROJECT_SETTINGS, Assignment, TaskSkip, User, WindowRecord
from labeling.services.claims import OPEN, free_for
from labeling.services.errors import InvalidInputError, NotFoundError


def assign(
    session: Session, *, project_id: int, user_id: int, window_ids: list[int]
) -> list[Assignment]:
    if session.get(User, user_id) is None:
        raise NotFoundError(f"no user {user_id}")
    wanted = sorted(set(window_ids))
    found = set(
        session.scalars(
            select(WindowRecord.id).where(
                WindowRecord.project_id == project_id, WindowRecord.id.in_(wanted)
            )
        )
    )
    missing = [w for w in wanted if w not in found]
    if missing:
        raise InvalidInputError(f"project {project_id} has no windows {missing[:10]}")
    have = set(
        session.scalars(
            select(Assignment.window_id).where(
                Assignment.user_id == user_id, Assignment.window_id.in_(wanted)
            )
        )
    )
    rows = [Assignment(window_id=w, user_id=user_id) for w in wanted if w not in have]
    session.add_all(rows)
    session.commit()
    return list_assignments(session, project_id=project_id, user_id=user_id)


def list_assignments(
    session: Session, *, project_id: int, user_id: int | None = None
) -> list[Assignment]:
    query = (
        select(Assignment)
        .join(WindowRecord, WindowRecord.id == Assignment.window_id)
        .where(WindowRecord.project_id == project_id)
        .order_by(Assignment.id)
    )
    if user_id is not None:
        query = query.where(Assignment.user_id == user_id)
    return list(session.scalars(query))


def next_task(
    session: Session,
    *,
    project_id: int,
    user_id: int,
    lock_minutes: float,
    min_valid_fraction: float = PROJECT_SETTINGS["min_valid_fraction"],
    tries: int = 10,
) -> WindowRecord | None:
    """Claim and return the caller's next task (``None`` when nothing is left)."""
    for _ in range(tries):
        now = utcnow()
        free = free_for(user_id, now)
        skipped = exists().where(TaskSkip.window_id == WindowRecord.id, TaskSkip.user_id == user_id)
        poor = and_(
            WindowRecord.valid_fraction.is_not(None),
            WindowRecord.valid_fraction < min_valid_fraction,
        )
        mine = exists().where(
            Assignment.window_id == WindowRecord.id, Assignment.user_id == user_id
        )
        anyone = ~exists().where(Assignment.window_id == WindowRecord.id)
        candidates = list(
            session.scalars(
                select(WindowRecord.id)
                .where(
                    WindowRecord.project_id == project_id,
                    WindowRecord.status.in_(OPEN),
                    free,
                    or_(mine, anyone),
                )
                .order_by(
                    case((WindowRecord.locked_by == user_id, 0), else_=1),
                    case((skipped, 1), else_=0),
                    case((mine, 0), else_=1),
                    case((poor, 1), else_=0),
                    WindowRecord.id,
                )
                .limit(5)
            )
        )
        if not candidates:
            return None
        for window_id in candidates:
            result = session.execute(
                update(WindowRecord)
                .where(and_(WindowRecord.id == window_id, WindowRecord.status.in_(OPEN), free))
                .values(
                    locked_by=user_id,
                    locked_until=now + timedelta(minutes=lock_minutes),
                    status="in_progress",
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                session.commit()
                return session.get(WindowRecord, window_id, populate_existing=True)
        session.rollback()
    return None
