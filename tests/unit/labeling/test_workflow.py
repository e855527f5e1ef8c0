"""Task statuses, reviews, assignments and next-task claiming."""

from __future__ import annotations

import pytest

from api.auth import create_user
from labeling.services import annotations, assignments, claims, reviews
from labeling.services.errors import (
    ConflictError,
    InvalidInputError,
    LockedError,
    PermissionDeniedError,
)


def test_status_machine(session, windows):
    w = windows[0].id
    alice = create_user(session, name="alice")
    session.commit()
    with pytest.raises(ConflictError, match="unlabeled"):
        reviews.submit(session, window_id=w, user_id=alice.id)
    got = assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=5)
    assert got.id == w and got.status == "in_progress" and got.locked_by == alice.id
    done = reviews.submit(session, window_id=w, user_id=alice.id)
    assert done.status == "submitted" and done.submitted_by == alice.id and done.locked_by is None
    with pytest.raises(ConflictError, match="submitted"):
        reviews.submit(session, window_id=w, user_id=alice.id)
    reviews.review(session, window_id=w, reviewer_id=1, decision="reject", comment="no")
    with pytest.raises(ConflictError, match="was rejected") as e:  # unchanged: say what to do
        reviews.submit(session, window_id=w, user_id=alice.id)
    assert "fix its annotations first" in e.value.fix
    # rejected goes back to in_progress when claimed again
    again = assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=5)
    assert again.id == w and again.status == "in_progress"
    reviews.submit(session, window_id=w, user_id=alice.id)
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
        reviews.submit(session, window_id=t.id, user_id=alice.id)
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


def _polygon_in(window):
    from shapely.geometry import mapping, shape

    return dict(mapping(shape(window.geometry).centroid.buffer(0.0001, 4)))


def test_a_claimed_window_refuses_everyone_else(session, project, windows):
    alice, bob = create_user(session, name="alice"), create_user(session, name="bob")
    session.commit()
    w = assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=5)
    geometry = _polygon_in(w)
    with pytest.raises(LockedError, match="claimed by alice until") as e:
        annotations.create_annotation(
            session,
            project=project,
            window_id=w.id,
            author_id=bob.id,
            geometry=geometry,
            class_value=0,
        )
    assert e.value.status == 423
    assert annotations.list_annotations(session, window_id=w.id) == []  # nothing stored
    mine = annotations.create_annotation(
        session,
        project=project,
        window_id=w.id,
        author_id=alice.id,
        geometry=geometry,
        class_value=0,
    )
    for action in (
        lambda: annotations.update_annotation(
            session,
            project=project,
            annotation_id=mine.id,
            version=1,
            author_id=bob.id,
            changes={"class_value": 3},
        ),
        lambda: annotations.delete_annotation(
            session, annotation_id=mine.id, version=1, user_id=bob.id
        ),
        lambda: reviews.submit(session, window_id=w.id, user_id=bob.id),
        lambda: claims.claim(session, window_id=w.id, user_id=bob.id, minutes=5),
        lambda: claims.release(session, window_id=w.id, user_id=bob.id),
    ):
        with pytest.raises(LockedError, match="alice"):
            action()
    kept = annotations.get_annotation(session, annotation_id=mine.id)
    assert kept.version == 1 and kept.class_value == 0
    assert session.get(type(w), w.id).status == "in_progress"
    # a manager may end anyone's claim; then bob can take the window
    claims.release(session, window_id=w.id, user_id=bob.id, force=True)
    assert claims.claim(session, window_id=w.id, user_id=bob.id, minutes=5).locked_by == bob.id


def test_submitting_needs_the_current_claim(session, project, windows):
    alice = create_user(session, name="alice")
    session.commit()
    w = assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=5)
    claims.release(session, window_id=w.id, user_id=alice.id)
    with pytest.raises(LockedError, match="do not hold the claim"):
        reviews.submit(session, window_id=w.id, user_id=alice.id)
    assert session.get(type(w), w.id).status == "in_progress"
    claims.claim(session, window_id=w.id, user_id=alice.id, minutes=5)
    assert reviews.submit(session, window_id=w.id, user_id=alice.id).status == "submitted"


def test_a_free_window_is_claimed_by_writing_to_it(session, project, windows):
    alice, bob = create_user(session, name="alice"), create_user(session, name="bob")
    session.commit()
    w = windows[1]
    annotations.create_annotation(
        session,
        project=project,
        window_id=w.id,
        author_id=alice.id,
        geometry=_polygon_in(w),
        class_value=0,
    )
    session.refresh(w)
    assert w.locked_by == alice.id and w.status == "in_progress"
    # bob's next task is never the window alice is working on
    got = []
    while t := assignments.next_task(session, project_id=1, user_id=bob.id, lock_minutes=5):
        if t.id in got:
            break
        got.append(t.id)
        claims.skip(session, window_id=t.id, user_id=bob.id)
        if len(got) > len(windows):
            break
    assert w.id not in got


def test_skipped_tasks_come_back_last(session, windows):
    alice = create_user(session, name="alice")
    session.commit()
    ids = [w.id for w in windows]
    first = assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=5)
    assert first.id == ids[0]
    skipped = claims.skip(session, window_id=first.id, user_id=alice.id)
    assert skipped.locked_by is None
    second = assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=5)
    assert second.id == ids[1]
    for i in ids[1:]:
        claims.claim(session, window_id=i, user_id=alice.id, minutes=5)
        reviews.submit(session, window_id=i, user_id=alice.id)
    # nothing else left: the skipped one comes back
    again = assignments.next_task(session, project_id=1, user_id=alice.id, lock_minutes=5)
    assert again.id == ids[0]


def test_windows_with_little_valid_imagery_are_handed_out_last(session, windows):
    alice = create_user(session, name="alice")
    session.commit()
    windows[0].valid_fraction = 0.2
    windows[1].valid_fraction = 0.9
    session.commit()
    got = assignments.next_task(
        session, project_id=1, user_id=alice.id, lock_minutes=5, min_valid_fraction=0.5
    )
    assert got.id == windows[1].id  # 0.9 before the unknown ones (by id) and the 0.2 one
    order = [got.id]
    while len(order) < len(windows):
        reviews.submit(session, window_id=order[-1], user_id=alice.id)
        order.append(
            assignments.next_task(
                session, project_id=1, user_id=alice.id, lock_minutes=5, min_valid_fraction=0.5
            ).id
        )
    assert order[-1] == windows[0].id
    # with a threshold of 0.1 the poor window is acceptable again (it is first by id)
    low = assignments.next_task(
        session, project_id=1, user_id=alice.id, lock_minutes=5, min_valid_fraction=0.1
    )
    assert low.id == windows[0].id


def test_a_reviewer_cannot_judge_their_own_work(session, project, windows):
    rita = create_user(session, name="rita")
    session.commit()
    w = assignments.next_task(session, project_id=1, user_id=rita.id, lock_minutes=5)
    reviews.submit(session, window_id=w.id, user_id=rita.id)
    with pytest.raises(PermissionDeniedError, match="you submitted") as e:
        reviews.review(session, window_id=w.id, reviewer_id=rita.id, decision="accept")
    assert "self_review" in e.value.fix
    assert session.get(type(w), w.id).status == "submitted"
    assert reviews.list_reviews(session, window_id=w.id) == []
    project.settings = {"self_review": True}
    session.commit()
    reviews.review(session, window_id=w.id, reviewer_id=rita.id, decision="accept")
    assert session.get(type(w), w.id, populate_existing=True).status == "accepted"


def test_annotation_size_limits(session, project, windows):
    from labeling.services.errors import TooLargeError

    w = windows[0]
    limits = annotations.Limits(max_vertices=20, max_bytes=2000)
    ring = list(_polygon_in(w)["coordinates"][0])  # 17 vertices
    annotations.check_geometry({"type": "Polygon", "coordinates": [ring]}, limits)
    many = {"type": "MultiPoint", "coordinates": [ring[0]] * 21}
    with pytest.raises(InvalidInputError, match="21 vertices; the limit is 20"):
        annotations.check_geometry(many, limits)
    big = {"type": "Polygon", "coordinates": [ring], "pad": "x" * 2000}
    with pytest.raises(TooLargeError, match="limit is 2,000") as e:
        annotations.check_geometry(big, limits)
    assert e.value.status == 413
    with pytest.raises(InvalidInputError, match="vertices"):
        annotations.create_annotation(
            session,
            project=project,
            window_id=w.id,
            author_id=1,
            geometry=many,
            class_value=0,
            limits=limits,
        )
    assert annotations.list_annotations(session, window_id=w.id) == []
