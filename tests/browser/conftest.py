"""The browser tests' headless Chromium (the ``make dev`` they drive is tests/conftest.py's ``dev``;
test_dashboard.py skips with one line locally when Chromium is missing, and fails in CI, where
.ci/run installs it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.browser import DESKTOP, start_browser


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    browser = start_browser(DESKTOP)
    yield browser
    browser.quit()
