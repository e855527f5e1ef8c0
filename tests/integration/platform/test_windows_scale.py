"""Windows at scale: 1,253 windows (bulk-inserted, not 1,253 requests) listed page by page with
``X-Total-Count``, every filter narrowing to exactly the windows it names, the per-status
summary and the GeoJSON overview; bad filter values are 422. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from labeling.models import STATUSES, Annotation, Assignment, WindowRecord
from tests.integration.platform.conftest import ADMIN, make_project, make_user

N = 1253


def _footprint(i: int) -> dict:
    x, y = -1.0 + (i % 50) * 0.01, 38.0 + (i // 50) * 0.01
    ring = [[x, y], [x + 0.01, y], [x + 0.01, y + 0.01], [x, y + 0.01], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.fixture
def populated(client, settings):
    """A project with ``N`` windows of every status, some materialised (``valid_fraction``),
    some assigned to two users, some annotated; returns (project id, users, the rows as
    dicts keyed by id)."""
    from labeling.services.windows import get_dataset

    pid = make_project(client)["id"]
    alice, _ = make_user(client, "alice", project_id=pid, role="labeler")
    bob, _ = make_user(client, "bob", project_id=pid, role="labeler")
    rng = random.Random(0)
    t0, t1 = datetime(2019, 9, 1, tzinfo=UTC), datetime(2019, 10, 1, tzinfo=UTC)
    with client.app.state.session_factory() as s:
        dataset = get_dataset(
            s, project_id=pid, name="default", project_dir=settings.project_dir(pid)
        )
        rows = [
            dict(
                project_id=pid,
                dataset_id=dataset.id,
                name=f"{'river' if i % 7 == 0 else 'field'}_{i:05d}",
                crs="EPSG:32630",
                resolution=10.0,
                col_min=i * 64,
                row_min=0,
                col_max=i * 64 + 64,
                row_max=64,
                start=t0,
                end=t1,
                geometry=_footprint(i),
                properties={},
                status=STATUSES[i % len(STATUSES)],
                valid_fraction=None if i % 5 == 0 else round(rng.random(), 3),
            )
            for i in range(N)
        ]
        s.execute(insert(WindowRecord), rows)
        s.commit()
        ids = list(s.scalars(select(WindowRecord.id).order_by(WindowRecord.id)))
        windows = {wid: {**row, "id": wid} for wid, row in zip(ids, rows, strict=True)}
        assigned = {alice: ids[::3], bob: ids[1::4]}  # some windows have both
        s.execute(
            insert(Assignment),
            [{"window_id": w, "user_id": u} for u, ws in assigned.items() for w in ws],
        )
        annotated = {1: ids[::6], 0: ids[2::9]}
        s.execute(
            insert(Annotation),
            [
                {"project_id": pid, "window_id": w, "geometry": _footprint(0), "class_value": c}
                for c, ws in annotated.items()
                for w in ws
                for _ in range(2)  # two annotations of a class: the window still counts once
            ],
        )
        s.commit()
    for u, ws in assigned.items():
        for w in ws:
            windows[w].setdefault("assignees", set()).add(u)
    for c, ws in annotated.items():
        for w in ws:
            windows[w].setdefault("classes", set()).add(c)
    return pid, (alice, bob), windows


def _all_ids(client, url: str, params: dict, limit: int) -> tuple[list[int], int]:
    """Every id of a filtered listing, page by page; checks the header on each page."""
    got, offset, total = [], 0, None
    while True:
        r = client.get(url, params={**params, "offset": offset, "limit": limit}, headers=ADMIN)
        assert r.status_code == 200, r.text
        page_total = int(r.headers["X-Total-Count"])
        assert total in (None, page_total)
        total = page_total
        page = r.json()
        assert len(page) <= limit
        got += [w["id"] for w in page]
        offset += limit
        if offset >= total:
            assert len(page) == total - (offset - limit)
            break
    return got, total


def test_pages_cover_every_window_once_and_the_total_is_in_the_header(client, populated):
    pid, _, windows = populated
    url = f"/api/v1/projects/{pid}/windows"
    r = client.get(url, headers=ADMIN)
    assert r.status_code == 200 and len(r.json()) == 100  # the default page
    assert r.headers["X-Total-Count"] == str(N)
    assert set(r.json()[0]) >= {"id", "name", "status", "valid_fraction", "geometry"}
    for limit in (1000, 97):
        ids, total = _all_ids(client, url, {}, limit)
        assert total == N and ids == sorted(windows) and len(set(ids)) == N
    r = client.get(url, params={"offset": N + 5}, headers=ADMIN)
    assert r.json() == [] and r.headers["X-Total-Count"] == str(N)
    r = client.get(url, params={"limit": 5000}, headers=ADMIN)  # pages hold at most 1000
    assert [w["id"] for w in r.json()] == sorted(windows)[:1000]


def test_each_filter_narrows_to_exactly_its_windows(client, populated):
    pid, (alice, bob), windows = populated
    url = f"/api/v1/projects/{pid}/windows"
    ws = list(windows.values())

    def valid(w, lo=None, hi=None):
        v = w["valid_fraction"]
        return v is not None and (lo is None or v >= lo) and (hi is None or v <= hi)

    cases = [
        ({"status": "submitted"}, lambda w: w["status"] == "submitted"),
        (
            {"status": ["accepted", "rejected"]},
            lambda w: w["status"] in ("accepted", "rejected"),
        ),
        (
            {"status": "unlabeled, in_progress"},
            lambda w: w["status"] in ("unlabeled", "in_progress"),
        ),
        ({"assignee": alice}, lambda w: alice in w.get("assignees", ())),
        ({"assignee": bob}, lambda w: bob in w.get("assignees", ())),
        ({"assignee": "none"}, lambda w: not w.get("assignees")),
        ({"class_value": 1}, lambda w: 1 in w.get("classes", ())),
        ({"class_value": 0}, lambda w: 0 in w.get("classes", ())),
        ({"class_value": 7}, lambda w: False),
        ({"min_valid": 0.5}, lambda w: valid(w, lo=0.5)),
        ({"max_valid": 0.25}, lambda w: valid(w, hi=0.25)),
        ({"min_valid": 0.2, "max_valid": 0.4}, lambda w: valid(w, 0.2, 0.4)),
        ({"min_valid": 0}, lambda w: valid(w)),  # a bound excludes the unknown
        ({"q": "river"}, lambda w: "river" in w["name"]),
        ({"q": "RIVER_0001"}, lambda w: w["name"].startswith("river_0001")),
        ({"q": "%"}, lambda w: False),  # LIKE wildcards are literal
        ({"q": "_"}, lambda w: True),
        (
            {"status": "accepted", "assignee": alice, "min_valid": 0.1, "q": "field"},
            lambda w: (
                w["status"] == "accepted"
                and alice in w.get("assignees", ())
                and valid(w, lo=0.1)
                and "field" in w["name"]
            ),
        ),
    ]
    for params, keep in cases:
        want = sorted(w["id"] for w in ws if keep(w))
        assert 0 <= len(want) < N or params == {"q": "_"}
        ids, total = _all_ids(client, url, params, 1000)
        assert (ids, total) == (want, len(want)), params
        summary = client.get(f"{url}/summary", params=params, headers=ADMIN).json()
        assert summary["total"] == len(want), params
        overview = client.get(f"{url}/overview", params=params, headers=ADMIN).json()
        assert [f["id"] for f in overview["features"]] == want, params


def test_summary_counts_every_status(client, populated):
    pid, _, windows = populated
    r = client.get(f"/api/v1/projects/{pid}/windows/summary", headers=ADMIN)
    assert r.status_code == 200, r.text
    want = {s: sum(w["status"] == s for w in windows.values()) for s in STATUSES}
    assert r.json() == {"total": N, "by_status": want}
    empty = make_project(client, name="empty")["id"]
    r = client.get(f"/api/v1/projects/{empty}/windows/summary", headers=ADMIN)
    assert r.json() == {"total": 0, "by_status": dict.fromkeys(STATUSES, 0)}


def test_overview_is_geojson_of_every_window(client, populated):
    pid, _, windows = populated
    r = client.get(f"/api/v1/projects/{pid}/windows/overview", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == N
    for f in fc["features"][:: N // 40]:
        w = windows[f["id"]]
        assert f["type"] == "Feature" and f["geometry"] == w["geometry"]
        assert f["properties"] == {
            "id": w["id"],
            "name": w["name"],
            "status": w["status"],
            "valid_fraction": w["valid_fraction"],
        }


BAD = [
    {"status": "done"},
    {"status": "accepted,nope"},
    {"assignee": "alice"},
    {"assignee": "0"},
    {"assignee": "-3"},
    {"class_value": "water"},
    {"min_valid": "1.5"},
    {"max_valid": "-0.1"},
    {"min_valid": "abc"},
    {"min_valid": "0.8", "max_valid": "0.2"},
    {"q": ""},
    {"q": "x" * 201},
]


def test_bad_filter_values_are_422(client):
    pid = make_project(client)["id"]
    url = f"/api/v1/projects/{pid}/windows"
    for path in ("", "/summary", "/overview"):
        for params in BAD:
            r = client.get(url + path, params=params, headers=ADMIN)
            assert r.status_code == 422, (path, params, r.text)
            assert r.json()["fix"]
    for params in ({"limit": 0}, {"limit": "many"}, {"offset": -1}):
        assert client.get(url, params=params, headers=ADMIN).status_code == 422, params
    r = client.get(url, params={"status": "done"}, headers=ADMIN)
    assert "'done'" in r.json()["detail"] and "unlabeled" in r.json()["fix"]
