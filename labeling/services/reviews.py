"""The review workflow: submit a task, accept or reject it.

unlabeled -> in_progress -> submitted -> accepted | rejected; rejected -> in_progress. Every
transition is one conditional UPDATE on the current status, so two concurrent reviewers cannot
both decide. Submitting needs the caller's current claim on the window; a reviewer cannot
judge their own submission unless the project allows single-person review (``self_review``).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from labeling.db import utcnow
from labeling.models import Project, Review, WindowRecord
from labeling.services import claims
from labeling.services.errors import (
    ConflictError,
    LockedError,
    NotFoundError,
    PermissionDeniedError,
)


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


def submit(session: Session, *, window_id: int, user_id: int) -> WindowRecord:
    """in_progress -> submitted by the holder of the window's claim (which it ends)."""
    window = session.get(WindowRecord, window_id)
    if window is None:
        raise NotFoundError(f"no window {window_id}")
    if window.status == "in_progress" and not claims.holds_claim(
        session, window_id=window_id, user_id=user_id
    ):
        if window.locked_by not in (None, user_id) and window.locked_until >= utcnow():
            raise claims.refusal(session, window, "submit")
        raise LockedError(
            f"you do not hold the claim on window {window_id} (it ran out or was released)",
            fix="claim it again (POST /windows/{id}/claim), check its annotations, then submit",
        )
    try:
        _transition(
            session,
            window_id,
            ("in_progress",),
            "submitted",
            locked_by=None,
            locked_until=None,
            submitted_by=user_id,
        )
    except ConflictError as e:
        status = session.scalar(select(WindowRecord.status).where(WindowRecord.id == window_id))
        if status != "rejected":
            raise
        raise ConflictError(
            f"window {window_id} was rejected and its labels have not changed since",
            fix="fix its annotations first (any edit returns it to in_progress), then submit",
        ) from e
    claims.forget_skips(session, window_id=window_id)
    session.commit()
    return session.get(WindowRecord, window_id, populate_existing=True)


def review(
    session: Session, *, window_id: int, reviewer_id: int, decision: str, comment: str = ""
) -> Review:
    """submitted -> accepted (``accept``) or rejected (``reject``), with a review record."""
    to = {"accept": "accepted", "reject": "rejected"}[decision]
    window = session.get(WindowRecord, window_id)
    if window is None:
        raise NotFoundError(f"no window {window_id}")
    if window.submitted_by == reviewer_id and window.status == "submitted":
        project = session.get(Project, window.project_id)
        if not project.setting("self_review"):
            raise PermissionDeniedError(
                f"you submitted window {window_id}; someone else must review it",
                fix="ask another reviewer, or let a project admin allow single-person review "
                '(PATCH /projects/{id} with {"settings": {"self_review": true}})',
            )
    _transition(session, window_id, ("submitted",), to)
    row = Review(window_id=window_id, reviewer_id=reviewer_id, decision=decision, comment=comment)
    session.add(row)
    session.commit()
    return row


def list_reviews(session: Session, *, window_id: int) -> list[Review]:
    return list(
        session.scalars(select(Review).where(Review.window_id == window_id).order_by(Review.id))
    )
