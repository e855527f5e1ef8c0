"""Shared fixtures, and the CI rule: a test skipped for a missing component fails under CI=true.

Tests that need something outside the repository (the ../shared data, a database, the browser)
skip with a reason starting with ``missing component:``. Locally that is a skip; in CI it is a
failure, so CI cannot go green by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
MISSING = "missing component:"


def shared_data_dir() -> Path:
    return Path(os.environ.get("EARTHPLAT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"{MISSING} shared data at {path} (set EARTHPLAT_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shakespeare(shared_data: Path) -> Path:
    path = shared_data / "text" / "tinyshakespeare.txt"
    if not path.is_file():
        pytest.skip(f"{MISSING} {path}")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # one measured CPU peak per session, never the developer's own cache
    monkeypatch.setenv("EARTHPLAT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI", "").lower() != "true" or not report.skipped:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if MISSING in reason:
        report.outcome = "failed"
        report.longrepr = f"CI=true forbids skipping for a missing component: {reason}"
