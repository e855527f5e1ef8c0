"""Task statuses, reviews, assignments and next-task claiming."""

from __future__ import annotations

import pytest

from api.auth import create_user
from labeling.services import assignments, reviews
from labeling.services.errors import ConflictError, InvalidInputError


def test_status_machine(session, windows):
    w = windows[0].id
    with pytest.raises(ConflictError, match="unlabeled"):
        reviews.submit(session, window_id=w)
    alice = create_user(session, name="alice")
    session.commit()
    got = assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=5)
    assert got.id == w and got.status == "in_progress" and got.locked_by == alice.id
    assert reviews.submit(session, window_id=w).status == "submitted"
    with pytest.raises(ConflictError, match="submitted"):
        reviews.submit(session, window_id=w)
    reviews.review(session, window_id=w, reviewer_id=1, decision="reject", comment="no")
    with pytest.raises(ConflictError, match="was rejected") as e:  # unchanged: say what to do
        reviews.submit(session, window_id=w)
    assert "fix its annotations first" in e.value.fix
    # rejected goes back to in_progress when claimed again
    again = assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=5)
    assert again.id == w and again.status == "in_progress"
    reviews.submit(session, window_id=w)
    reviews.review(session, window_id=w, reviewer_id=1, decision="accept")
    with pytest.raises(ConflictError, match="accepted"):
        reviews.review(session, window_id=w, reviewer_id=1, decision="reject")
    assert [r.decision for r in reviews.list_reviews(session, window_id=w)] == [
        "reject",
        "accept",
    ]


def test_next_task_respects_locks_and_assignments(session, windows):
    alice, bob = create_user(session, name="alice"), create_user(session, name="bob")
    session.commit()
    ids = [w.id for w in windows]
    assert len(ids) >= 3
    # the last window is assigned to bob only: alice never gets it
    assignments.assign(session, project_id=1, user_id=bob.id, window_ids=[ids[-1]])
    first_bob = assignments.next_task(session, project_id=1, user_id=bob.id, lock_minutes=5)
    assert first_bob.id == ids[-1]  # assigned work first
    seen = []
    while t := assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=5):
        if t.id in seen:
            break  # alice holds it already: she gets her own task back
        seen.append(t.id)
        reviews.submit(session, window_id=t.id)
    assert ids[-1] not in seen and sorted(seen) == ids[:-1]
    # bob's claimed task is locked to him; his next call returns it again
    assert (
        assignments.next_task(session, project_id=1, user_id=bob.id, lock_minutes=5).id == (ids[-1])
    )
    with pytest.raises(InvalidInputError, match="no windows"):
        assignments.assign(session, project_id=1, user_id=bob.id, window_ids=[99999])


def test_expired_lock_is_reclaimed(session, windows):
    alice, bob = create_user(session, name="alice"), create_user(session, name="bob")
    session.commit()
    for w in windows[1:]:
        w.status = "accepted"
    session.commit()
    t = assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=-1)
    assert t.id == windows[0].id
    # alice's lock has expired (negative lock time), so bob may take it
    assert assignments.next_task(session, project_id=1, user_id=bob.id, lock_minutes=5).id == t.id
    # now bob holds it: alice gets nothing
    assert assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=5) is None
