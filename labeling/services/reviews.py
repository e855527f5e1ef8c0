"""The review workflow: submit a task, accept or reject it.

unlabeled -> in_progress -> submitted -> accepted | rejected; rejected -> in_progress. Every
transition is one conditional UPDATE on the current status, so two concurrent reviewers cannot
both decide.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from labeling.db import utcnow
from labeling.models import Review, WindowRecord
from labeling.services.errors import ConflictError, NotFoundError


def _transition(session: Session, window_id: int, frm: tuple[str, ...], to: str, **extra) -> None:
    result = session.execute(
        update(WindowRecord)
        .where(WindowRecord.id == window_id, WindowRecord.status.in_(frm))
        .values(status=to, updated_at=utcnow(), **extra)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        session.rollback()
        status = session.scalar(select(WindowRecord.status).where(WindowRecord.id == window_id))
        if status is None:
            raise NotFoundError(f"no window {window_id}")
        raise ConflictError(
            f"window {window_id} is {status}; only a window that is {' or '.join(frm)} can "
            f"become {to}"
        )


def submit(session: Session, *, window_id: int) -> WindowRecord:
    """in_progress -> submitted (releases the labeller's lock)."""
    try:
        _transition(
            session, window_id, ("in_progress",), "submitted", locked_by=None, locked_until=None
        )
    except ConflictError as e:
        status = session.scalar(select(WindowRecord.status).where(WindowRecord.id == window_id))
        if status != "rejected":
            raise
        raise ConflictError(
            f"window {window_id} was rejected and its labels have not changed since",
            fix="fix its annotations first (any edit returns it to in_progress), then submit",
        ) from e
    session.commit()
    return session.get(WindowRecord, window_id, populate_existing=True)


def review(
    session: Session, *, window_id: int, reviewer_id: int, decision: str, comment: str = ""
) -> Review:
    """submitted -> accepted (``accept``) or rejected (``reject``), with a review record."""
    to = {"accept": "accepted", "reject": "rejected"}[decision]
    _transition(session, window_id, ("submitted",), to)
    row = Review(window_id=window_id, reviewer_id=reviewer_id, decision=decision, comment=comment)
    session.add(row)
    session.commit()
    return row


def list_reviews(session: Session, *, window_id: int) -> list[Review]:
    return list(
        session.scalars(select(Review).where(Review.window_id == window_id).order_by(Review.id))
    )
