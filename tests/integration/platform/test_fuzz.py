"""Property-based fuzzing of every operation in the OpenAPI spec (schemathesis strategies driven
by hypothesis, derandomised): authenticated as admin against a seeded project, no request may
produce a 5xx. 500 cases per database, 1,000 in total."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.integration.platform.conftest import ADMIN, centre, make_project

CASES = 500
"""Per database: 1,000 in total over SQLite and PostgreSQL (about 30 s each on 2 busy cores)."""
SKIP = {("GET", "/metrics")}


@pytest.fixture
def fuzz_app(settings, db_url):
    from api.main import create_app

    settings.max_windows = 20  # keep random AOIs cheap
    app = create_app(settings)
    yield app
    app.state.engine.dispose()


def _seed(client) -> None:
    pid = make_project(client)["id"]
    r = client.post(
        f"/api/v1/projects/{pid}/windows/aoi",
        json={"bbox": [-0.77, 38.09, -0.76, 38.1], "start": "2020-01-01", "end": "2020-02-01"},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    window = r.json()["windows"][0]
    r = client.post(
        f"/api/v1/windows/{window['id']}/annotations",
        json={"geometry": centre(window), "class_value": 1},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text


@pytest.mark.slow
def test_no_server_errors(fuzz_app):
    import schemathesis
    from fastapi.testclient import TestClient

    with TestClient(fuzz_app) as client:
        _seed(client)
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [
        op.ok()
        for op in schema.get_all_operations()
        if (op.ok().method.upper(), op.ok().path) not in SKIP
    ]
    assert len(operations) >= 30
    # a few operations have fewer distinct inputs than this (GET /health has one)
    per_op = -(-CASES * 5 // (4 * len(operations)))
    calls: list[tuple[str, int]] = []
    failures: list[str] = []

    def fuzz(operation) -> None:
        @settings(
            max_examples=per_op,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(headers=dict(ADMIN)))
        def run(case) -> None:
            key = f"{operation.method.upper()} {operation.path}"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    response = case.call(headers=dict(ADMIN))
            except Exception as e:  # TestClient re-raises server errors
                failures.append(f"{key} raised {type(e).__name__}: {e}".splitlines()[0])
                calls.append((key, 500))
                return
            calls.append((key, response.status_code))
            if response.status_code >= 500:
                failures.append(f"{key} -> {response.status_code}: {case.as_curl_command()}")

        run()

    for operation in operations:
        fuzz(operation)
    assert not failures, "\n".join(failures[:10])
    assert len(calls) >= CASES
    # the fuzzing reached real handlers, not only validation errors
    assert any(200 <= status < 300 for _, status in calls)
    assert len({key for key, _ in calls}) == len(operations)
