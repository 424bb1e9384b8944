"""Fixtures of the dashboard tests: a ``make dev`` of their own, headless Chromium (test_dashboard.py
skips with one line locally when Chromium is missing, and fails in CI, where .ci/run installs it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.browser import DESKTOP, start_browser
from tests.integration.local_stack import DevStack, start_dev


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """A ``make dev`` of its own on free ports, with fresh data."""
    stack = start_dev(tmp_path_factory.mktemp("dashboard"))
    yield stack
    assert stack.stop() == 0, stack.stderr


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    browser = start_browser(DESKTOP)
    yield browser
    browser.quit()
