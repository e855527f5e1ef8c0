"""50 concurrent labellers over real loopback HTTP (uvicorn in a subprocess), on SQLite and
PostgreSQL: of 50 racing for one free window exactly one claims it and the others get 423 with
nothing stored; then 50 sessions of the winner write at once: no write is lost, every stale write
gets 409 and changes nothing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.platform.conftest import ADMIN, CLASSES, auth, centre, live_server

N = 50
M = 12


def _seed(base: str, db_url: str) -> tuple[dict, int, list[dict[str, str]]]:
    """A project, one window over the point, and N labellers; returns (window, project, hdrs)."""
    with httpx.Client(base_url=base, timeout=60) as c:
        pid = c.post(
            "/api/v1/projects",
            json={"name": "race", "task_type": "detection", "classes": CLASSES},
            headers=ADMIN,
        ).json()["id"]
        r = c.post(
            f"/api/v1/projects/{pid}/windows/aoi",
            json={
                "bbox": [-0.7601, 38.0999, -0.7599, 38.1001],
                "start": "2020-01-01",
                "end": "2020-02-01",
                "size": 64,
            },
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        window = r.json()["windows"][0]
    return window, pid, _labellers(db_url, pid)


def _labellers(db_url: str, project_id: int) -> list[dict[str, str]]:
    """N labellers with keys, straight through the auth functions (one transaction, not 150
    requests)."""
    from api import auth as authn
    from api.database import make_engine, make_session_factory
    from labeling.services.projects import set_member

    engine = make_engine(db_url)
    headers = []
    with make_session_factory(engine)() as session:
        for i in range(N):
            user = authn.create_user(session, name=f"l{i}")
            _, key = authn.create_key(session, user_id=user.id)
            headers.append(auth(key))
        session.commit()
        for i in range(N):
            set_member(session, project_id=project_id, user_id=i + 2, role="labeler")
    engine.dispose()
    return headers


@pytest.mark.slow
def test_fifty_labellers(db_url, data_dir):
    with live_server(db_url, data_dir) as base:
        t0 = time.perf_counter()
        window, _, headers = _seed(base, db_url)
        wid, geom = window["id"], centre(window)
        print(f"seed: {time.perf_counter() - t0:.1f} s")
        racers = [httpx.Client(base_url=base, timeout=120, headers=h) for h in headers]
        pool = ThreadPoolExecutor(N)
        clients: list[httpx.Client] = []
        try:
            # 0. N labellers write to the same free window at once: the first write claims
            # it, every other one is refused with 423 naming the holder, and stores nothing
            barrier0 = threading.Barrier(N)

            def race(i: int) -> httpx.Response:
                barrier0.wait()
                return racers[i].post(
                    f"/api/v1/windows/{wid}/annotations",
                    json={"geometry": geom, "class_value": 1, "properties": {"race": i}},
                )

            answers = list(pool.map(race, range(N)))
            codes = sorted(r.status_code for r in answers)
            assert codes == [201] + [423] * (N - 1), codes
            winner = next(i for i, r in enumerate(answers) if r.status_code == 201)
            for r in answers:
                if r.status_code == 423:
                    assert f"claimed by l{winner} until" in r.json()["detail"]
            stored = racers[0].get(f"/api/v1/windows/{wid}/annotations").json()
            assert [a["properties"] for a in stored] == [{"race": winner}]
            racers[winner].delete(
                f"/api/v1/annotations/{stored[0]['id']}", headers={"If-Match": '"1"'}
            ).raise_for_status()

            # the rest runs in N sessions of the claim's holder (one labeller, many tabs)
            clients = [
                httpx.Client(base_url=base, timeout=120, headers=headers[winner]) for _ in range(N)
            ]

            # 1. concurrent creates: every one lands
            def create(i: int) -> list[int]:
                out = []
                for j in range(2):
                    r = clients[i].post(
                        f"/api/v1/windows/{wid}/annotations",
                        json={"geometry": geom, "class_value": 1, "properties": {"n": i, "j": j}},
                    )
                    assert r.status_code == 201, r.text
                    out.append(r.json()["id"])
                return out

            t0 = time.perf_counter()
            created = [a for ids in pool.map(create, range(N)) for a in ids]
            print(f"creates: {time.perf_counter() - t0:.1f} s")
            listed = clients[0].get(f"/api/v1/windows/{wid}/annotations").json()
            assert len(created) == len(set(created)) == 2 * N
            assert sorted(a["id"] for a in listed) == sorted(created)

            # 2. all N hold the same version and write at once: one wins, N-1 get 409
            target = created[0]
            rounds = 3
            barrier = threading.Barrier(N)
            results: list[tuple[int, int, int]] = []  # (round, labeller, status)
            lock = threading.Lock()

            def contend(i: int) -> None:
                for rnd in range(rounds):
                    version = clients[i].get(f"/api/v1/annotations/{target}").json()["version"]
                    barrier.wait()  # everyone has read before anyone writes
                    r = clients[i].patch(
                        f"/api/v1/annotations/{target}",
                        json={"properties": {"winner": i, "round": rnd}},
                        headers={"If-Match": f'"{version}"'},
                    )
                    with lock:
                        results.append((rnd, i, r.status_code))
                    barrier.wait()  # the round is over before the next read

            t0 = time.perf_counter()
            list(pool.map(contend, range(N)))
            print(f"contended rounds: {time.perf_counter() - t0:.1f} s")
            for rnd in range(rounds):
                codes = sorted(s for r, _, s in results if r == rnd)
                assert codes == [200] + [409] * (N - 1), (rnd, codes)
            final = clients[0].get(f"/api/v1/annotations/{target}").json()
            assert final["version"] == 1 + rounds
            last_winner = next(i for r, i, s in results if r == rounds - 1 and s == 200)
            assert final["properties"] == {"winner": last_winner, "round": rounds - 1}

            # 3. read-modify-write with retry (M labellers; N would take O(N^2) requests): a
            # counter loses no increment
            counter = created[1]

            def increment(i: int) -> int:
                conflicts = 0
                while True:
                    cur = clients[i].get(f"/api/v1/annotations/{counter}").json()
                    count = cur["properties"].get("count", 0)
                    r = clients[i].patch(
                        f"/api/v1/annotations/{counter}",
                        json={"version": cur["version"], "properties": {"count": count + 1}},
                    )
                    if r.status_code == 200:
                        return conflicts
                    assert r.status_code == 409, r.text
                    assert "version" in r.json()["detail"] and r.json()["fix"]
                    conflicts += 1

            conflicts = sum(pool.map(increment, range(M)))
            final = clients[0].get(f"/api/v1/annotations/{counter}").json()
            assert final["properties"]["count"] == M
            assert final["version"] == 1 + M
            assert conflicts > 0  # the test did contend
        finally:
            pool.shutdown()
            for c in racers + clients:
                c.close()
