"""The labelling rules the server enforces, over the API on SQLite and PostgreSQL: claims
(423 naming the holder and the claim's end), submit needs the claim, skip and release, windows
with little valid imagery handed out last, no self-review unless the project allows it, size
limits on annotations, and inverted bounding boxes refused. Every refusal stores nothing and
loses nothing."""

from __future__ import annotations

from shapely.geometry import mapping, shape

from tests.integration.platform.conftest import ADMIN, make_project, make_user, make_windows

BBOX = [-0.77, 38.095, -0.755, 38.105]


def _inside(window: dict, radius: float = 0.0001) -> dict:
    return dict(mapping(shape(window["geometry"]).centroid.buffer(radius, 4)))


def _setup(client, n_windows_at_least: int = 3, **settings):
    pid = make_project(client, settings=settings)["id"]
    windows = make_windows(client, pid, BBOX, size=64)
    assert len(windows) >= n_windows_at_least
    return pid, windows


def _annotations(client, wid: int) -> list[dict]:
    return client.get(f"/api/v1/windows/{wid}/annotations", headers=ADMIN).json()


def test_a_claimed_window_refuses_everyone_else(client):
    pid, _ = _setup(client)
    alice_id, alice = make_user(client, "alice", project_id=pid, role="labeler")
    _, bob = make_user(client, "bob", project_id=pid, role="labeler")
    task = client.post(f"/api/v1/projects/{pid}/tasks/next", headers=alice).json()
    wid = task["id"]
    r = client.post(
        f"/api/v1/windows/{wid}/annotations",
        json={"geometry": _inside(task), "class_value": 1},
        headers=alice,
    )
    assert r.status_code == 201
    ann = r.json()

    refusals = [
        client.post(
            f"/api/v1/windows/{wid}/annotations",
            json={"geometry": _inside(task), "class_value": 0},
            headers=bob,
        ),
        client.patch(
            f"/api/v1/annotations/{ann['id']}",
            json={"class_value": 0},
            headers={**bob, "If-Match": '"1"'},
        ),
        client.delete(f"/api/v1/annotations/{ann['id']}?version=1", headers=bob),
        client.post(f"/api/v1/windows/{wid}/submit", headers=bob),
        client.post(f"/api/v1/windows/{wid}/claim", headers=bob),
        client.post(f"/api/v1/windows/{wid}/release", headers=bob),
    ]
    for r in refusals:
        assert r.status_code == 423, r.text
        body = r.json()
        assert "claimed by alice until 20" in body["detail"] and body["fix"]
    # nothing stored, nothing lost
    (kept,) = _annotations(client, wid)
    assert kept["version"] == 1 and kept["class_value"] == 1 and kept["author_id"] == alice_id
    window = client.get(f"/api/v1/windows/{wid}", headers=ADMIN).json()
    assert window["status"] == "in_progress" and window["locked_by"] == alice_id
    # bob's next task is another window
    other = client.post(f"/api/v1/projects/{pid}/tasks/next", headers=bob).json()
    assert other["id"] != wid
    # a project admin may end anyone's claim; then bob can claim it
    r = client.post(f"/api/v1/windows/{wid}/release", headers=ADMIN)
    assert r.status_code == 200 and r.json()["locked_by"] is None
    r = client.post(f"/api/v1/windows/{wid}/claim", headers=bob)
    assert r.status_code == 200 and r.json()["locked_until"]


def test_submit_needs_the_claim_and_skip_hands_the_task_back_last(client):
    pid, windows = _setup(client)
    _, alice = make_user(client, "alice", project_id=pid, role="labeler")
    first = client.post(f"/api/v1/projects/{pid}/tasks/next", headers=alice).json()
    assert client.post(f"/api/v1/windows/{first['id']}/release", headers=alice).status_code == 200
    r = client.post(f"/api/v1/windows/{first['id']}/submit", headers=alice)
    assert r.status_code == 423 and "do not hold the claim" in r.json()["detail"]
    assert client.get(f"/api/v1/windows/{first['id']}", headers=ADMIN).json()["status"] == (
        "in_progress"
    )
    # skip: the next task is another window, and the skipped one comes back only at the end
    assert client.post(f"/api/v1/windows/{first['id']}/claim", headers=alice).status_code == 200
    r = client.post(f"/api/v1/windows/{first['id']}/skip", headers=alice)
    assert r.status_code == 200 and r.json()["locked_by"] is None
    order = []
    while True:
        r = client.post(f"/api/v1/projects/{pid}/tasks/next", headers=alice)
        if r.status_code == 204:
            break
        wid = r.json()["id"]
        order.append(wid)
        r = client.post(f"/api/v1/windows/{wid}/submit", headers=alice)
        assert r.status_code == 200, r.text
        assert r.json()["submitted_by"] is not None
    assert order[-1] == first["id"] and len(order) == len(windows)


def test_windows_with_little_valid_imagery_come_last(client, db_url):
    from sqlalchemy import create_engine, text

    pid, windows = _setup(client)
    ids = [w["id"] for w in windows]
    engine = create_engine(db_url)
    with engine.begin() as conn:  # what a materialize job records
        conn.execute(
            text("UPDATE windows SET valid_fraction = :f WHERE id = :i"),
            [{"f": 0.3, "i": ids[0]}, {"f": 0.8, "i": ids[1]}],
        )
    engine.dispose()
    listed = {
        w["id"]: w for w in client.get(f"/api/v1/projects/{pid}/windows", headers=ADMIN).json()
    }
    assert listed[ids[0]]["valid_fraction"] == 0.3
    assert client.get(f"/api/v1/projects/{pid}", headers=ADMIN).json()["settings"] == {
        "min_valid_fraction": 0.5,
        "self_review": False,
    }
    got = client.post(f"/api/v1/projects/{pid}/tasks/next", headers=ADMIN).json()
    assert got["id"] == ids[1]  # ids[0] is below the default 50 %
    client.post(f"/api/v1/windows/{got['id']}/release", headers=ADMIN)
    # the threshold is the project's: at 20 % the first window is fine again
    r = client.patch(
        f"/api/v1/projects/{pid}", json={"settings": {"min_valid_fraction": 0.2}}, headers=ADMIN
    )
    assert r.status_code == 200 and r.json()["settings"]["min_valid_fraction"] == 0.2
    assert r.json()["settings"]["self_review"] is False  # a patch keeps the other settings
    assert client.post(f"/api/v1/projects/{pid}/tasks/next", headers=ADMIN).json()["id"] == ids[0]
    # bad settings are a 422 and change nothing
    for bad in ({"min_valid_fraction": 1.5}, {"min_valid_fraction": None}, {"colour": "red"}):
        r = client.patch(f"/api/v1/projects/{pid}", json={"settings": bad}, headers=ADMIN)
        assert r.status_code == 422, (bad, r.text)
    r = client.patch(f"/api/v1/projects/{pid}", json={"settings": None}, headers=ADMIN)
    assert r.status_code == 422
    assert client.get(f"/api/v1/projects/{pid}", headers=ADMIN).json()["settings"] == {
        "min_valid_fraction": 0.2,
        "self_review": False,
    }


def test_a_reviewer_cannot_judge_their_own_submission(client):
    pid, _ = _setup(client)
    _, rita = make_user(client, "rita", project_id=pid, role="reviewer")
    _, rev2 = make_user(client, "other", project_id=pid, role="reviewer")
    task = client.post(f"/api/v1/projects/{pid}/tasks/next", headers=rita).json()
    wid = task["id"]
    client.post(
        f"/api/v1/windows/{wid}/annotations",
        json={"geometry": _inside(task), "class_value": 1},
        headers=rita,
    )
    assert client.post(f"/api/v1/windows/{wid}/submit", headers=rita).status_code == 200
    r = client.post(f"/api/v1/windows/{wid}/reviews", json={"decision": "accept"}, headers=rita)
    assert r.status_code == 403 and "you submitted" in r.json()["detail"]
    assert "self_review" in r.json()["fix"]
    assert client.get(f"/api/v1/windows/{wid}/reviews", headers=ADMIN).json() == []
    assert client.get(f"/api/v1/windows/{wid}", headers=ADMIN).json()["status"] == "submitted"
    # another reviewer may; and a project that allows single-person review lets rita
    r = client.post(f"/api/v1/windows/{wid}/reviews", json={"decision": "reject"}, headers=rev2)
    assert r.status_code == 201
    client.post(f"/api/v1/windows/{wid}/claim", headers=rita)
    (ann,) = _annotations(client, wid)
    client.patch(
        f"/api/v1/annotations/{ann['id']}",
        json={"class_value": 0},
        headers={**rita, "If-Match": '"1"'},
    ).raise_for_status()
    assert client.post(f"/api/v1/windows/{wid}/submit", headers=rita).status_code == 200
    client.patch(
        f"/api/v1/projects/{pid}", json={"settings": {"self_review": True}}, headers=ADMIN
    ).raise_for_status()
    r = client.post(f"/api/v1/windows/{wid}/reviews", json={"decision": "accept"}, headers=rita)
    assert r.status_code == 201
    assert client.get(f"/api/v1/windows/{wid}", headers=ADMIN).json()["status"] == "accepted"


def test_annotation_size_limits(client):
    _, windows = _setup(client)
    w = windows[0]
    c = shape(w["geometry"]).centroid
    post = client.post(
        f"/api/v1/windows/{w['id']}/annotations",
        json={"geometry": _inside(w), "class_value": 1},
        headers=ADMIN,
    )
    assert post.status_code == 201
    # 10,001 vertices: 422 naming the count and the limit
    many = {"type": "MultiPoint", "coordinates": [[c.x, c.y]] * 10_001}
    r = client.post(
        f"/api/v1/windows/{w['id']}/annotations",
        json={"geometry": many, "class_value": 1},
        headers=ADMIN,
    )
    assert r.status_code == 422 and "10,001 vertices; the limit is 10,000" in r.json()["detail"]
    assert "EARTHPLAT_ANNOTATION_MAX_VERTICES" in r.json()["fix"]
    # over a megabyte of GeoJSON: 413
    pt = [round(c.x, 15) + 1e-15, round(c.y, 15) + 1e-15]
    huge = {"type": "MultiPoint", "coordinates": [pt] * 9_000, "pad": "x" * 1_000_000}
    r = client.post(
        f"/api/v1/windows/{w['id']}/annotations",
        json={"geometry": huge, "class_value": 1},
        headers=ADMIN,
    )
    assert r.status_code == 413 and "the limit is 1,000,000" in r.json()["detail"]
    # an update over the limit changes nothing
    ann = post.json()
    r = client.patch(
        f"/api/v1/annotations/{ann['id']}",
        json={"geometry": many},
        headers={**ADMIN, "If-Match": '"1"'},
    )
    assert r.status_code == 422
    (kept,) = _annotations(client, w["id"])
    assert kept["version"] == 1 and kept["geometry"] == ann["geometry"]


def test_an_inverted_bbox_is_refused_not_flipped(client):
    pid = make_project(client)["id"]
    for bbox, what in (
        ([-0.758, 38.098, -0.762, 38.102], "min lon -0.758 must be less than max lon -0.762"),
        ([-0.762, 38.102, -0.758, 38.098], "min lat 38.102 must be less than max lat 38.098"),
        ([-0.762, 38.098, -0.762, 38.102], "inverted or empty"),
        ([-200, 38.098, -0.758, 38.102], "outside WGS84"),
    ):
        r = client.post(
            f"/api/v1/projects/{pid}/windows/aoi",
            json={"bbox": bbox, "start": "2019-09-01", "end": "2019-10-01", "size": 64},
            headers=ADMIN,
        )
        assert r.status_code == 422 and what in r.text, r.text
        r = client.post(
            f"/api/v1/projects/{pid}/predictions",
            json={"model_id": 1, "bbox": bbox},
            headers=ADMIN,
        )
        assert r.status_code == 422 and what in r.text, r.text
    assert client.get(f"/api/v1/projects/{pid}/windows", headers=ADMIN).json() == []
    assert client.get(f"/api/v1/projects/{pid}/datasets", headers=ADMIN).json() == []


def test_a_labeller_may_queue_windows_for_themselves_only(client):
    pid, windows = _setup(client)
    alice_id, alice = make_user(client, "alice", project_id=pid, role="labeler")
    bob_id, _ = make_user(client, "bob", project_id=pid, role="labeler")
    last = windows[-1]["id"]
    r = client.post(
        f"/api/v1/projects/{pid}/assignments",
        json={"user_id": bob_id, "window_ids": [last]},
        headers=alice,
    )
    assert r.status_code == 403
    r = client.post(
        f"/api/v1/projects/{pid}/assignments",
        json={"user_id": alice_id, "window_ids": [last]},
        headers=alice,
    )
    assert r.status_code == 201 and [a["window_id"] for a in r.json()] == [last]
    # her queue comes first
    assert client.post(f"/api/v1/projects/{pid}/tasks/next", headers=alice).json()["id"] == last
    assert client.get(f"/api/v1/projects/{pid}/assignments", headers=ADMIN).json()[0][
        "user_id"
    ] == (alice_id)
