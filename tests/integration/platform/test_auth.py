"""Authentication and roles: every mutating route under /api/v1 answers 401 without a valid key;
roles gate what members may do (403)."""

from __future__ import annotations

import re

from fastapi.routing import iter_route_contexts

from tests.integration.platform.conftest import (
    ADMIN,
    auth,
    centre,
    make_project,
    make_user,
    make_windows,
)

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def mutating_routes(app) -> list[tuple[str, str]]:
    out = []
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if not path.startswith("/api/v1"):
            continue
        for method in sorted((route.methods or set()) & MUTATING):
            out.append((method, path))
    return out


def test_every_mutation_needs_a_key(client, app):
    routes = mutating_routes(app)
    assert len(routes) >= 15
    bad_keys = [
        {},
        auth("ep_not_a_real_key"),
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer"},
    ]
    for method, path in routes:
        url = re.sub(r"\{[^}]+\}", "1", path)
        for headers in bad_keys:
            r = client.request(method, url, headers=headers, json={})
            assert r.status_code == 401, (method, path, headers, r.status_code, r.text)
            body = r.json()
            assert body["detail"] and body["fix"], (method, path)
            assert r.headers.get("www-authenticate") == "Bearer"


def test_revoked_key_is_refused(client):
    uid, headers = make_user(client, "temp")
    assert client.get("/api/v1/users/me", headers=headers).json()["id"] == uid
    key_id = client.get(f"/api/v1/users/{uid}/keys", headers=headers).json()[0]["id"]
    assert client.delete(f"/api/v1/keys/{key_id}", headers=headers).status_code == 200
    r = client.post(
        "/api/v1/projects", json={"name": "x", "task_type": "embedding"}, headers=headers
    )
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_keys_are_stored_hashed(client, app):
    from sqlalchemy import select

    from labeling.models import ApiKey

    _, headers = make_user(client, "hashed")
    key = headers["Authorization"].split()[1]
    with app.state.session_factory() as session:
        stored = list(session.scalars(select(ApiKey.key_hash)))
    assert key not in stored and all(len(h) == 64 for h in stored)


def test_roles(client):
    pid = make_project(client)["id"]
    window = make_windows(client, pid, [-0.77, 38.09, -0.76, 38.1])[0]
    _, viewer = make_user(client, "viewer", project_id=pid, role="viewer")
    _, labeler = make_user(client, "labeler", project_id=pid, role="labeler")
    _, outsider = make_user(client, "outsider")
    point = {"geometry": centre(window), "class_value": 0}

    def denied(r, role_word: str) -> None:
        assert r.status_code == 403, r.text
        assert role_word in r.json()["detail"], r.json()

    # viewers read but do not label
    assert client.get(f"/api/v1/projects/{pid}", headers=viewer).status_code == 200
    denied(
        client.post(f"/api/v1/windows/{window['id']}/annotations", json=point, headers=viewer),
        "viewer",
    )
    denied(client.post(f"/api/v1/projects/{pid}/tasks/next", headers=viewer), "viewer")
    # labellers label but do not review, collect data or manage members
    r = client.post(f"/api/v1/windows/{window['id']}/annotations", json=point, headers=labeler)
    assert r.status_code == 201
    client.post(f"/api/v1/windows/{window['id']}/submit", headers=labeler)
    denied(
        client.post(
            f"/api/v1/windows/{window['id']}/reviews", json={"decision": "accept"}, headers=labeler
        ),
        "labeler",
    )
    denied(
        client.post(
            f"/api/v1/projects/{pid}/windows/aoi",
            json={"bbox": [-0.7, 38.0, -0.69, 38.01], "start": "2020-01-01", "end": "2020-02-01"},
            headers=labeler,
        ),
        "labeler",
    )
    denied(
        client.put(f"/api/v1/projects/{pid}/members/2", json={"role": "admin"}, headers=labeler),
        "labeler",
    )
    denied(client.delete(f"/api/v1/projects/{pid}", headers=labeler), "labeler")
    # non-members see nothing of the project; only platform admins manage users
    denied(client.get(f"/api/v1/projects/{pid}", headers=outsider), "not a member")
    assert client.get("/api/v1/projects", headers=outsider).json() == []
    denied(client.post("/api/v1/users", json={"name": "x"}, headers=labeler), "admin")
    denied(client.post("/api/v1/users/1/keys", json={}, headers=labeler), "own")
    # the window is still submitted: no denied request changed anything
    assert client.get(f"/api/v1/windows/{window['id']}", headers=ADMIN).json()["status"] == (
        "submitted"
    )
