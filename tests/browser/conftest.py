"""Browser fixtures: one headless Debian chromium per test module, a fresh context per test
that fails the test on any uncaught error in the page."""

from __future__ import annotations

import pytest

from tests.browser.helpers import CHROMIUM, TIMEOUT_MS, need_components


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    need_components()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
