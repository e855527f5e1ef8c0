"""Under CI=true a skip for a missing component fails the run; other skips stay skips."""

from pathlib import Path

import pytest

CONFTEST = (Path(__file__).resolve().parents[1] / "conftest.py").read_text()
TESTS = """
import pytest

def test_needs_data():
    pytest.skip("missing component: shared data at /nowhere")

def test_plain_skip():
    pytest.skip("not relevant on this platform")
"""


@pytest.mark.parametrize("ci, failed", [("true", 1), ("", 0)])
def test_missing_component_skip_fails_only_in_ci(pytester, monkeypatch, ci, failed):
    monkeypatch.setenv("CI", ci)
    pytester.makeconftest(CONFTEST.replace('pytest_plugins = ["pytester"]', ""))
    pytester.makepyfile(test_rule=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=failed, skipped=2 - failed)
