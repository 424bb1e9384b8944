"""The browser tests need Debian's Chromium: locally they skip with one line saying how to get it;
in CI (``CI=true``, where ``.ci/run`` installs it) a missing Chromium fails them instead."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.browser import DESKTOP, GET_CHROMIUM, chromium, start_browser
from tests.integration.local_stack import DevStack, start_dev


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """A ``make dev`` of its own on free ports, with fresh data."""
    stack = start_dev(tmp_path_factory.mktemp("dashboard"))
    yield stack
    assert stack.stop() == 0, stack.stderr


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    if chromium() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium is missing in CI ({GET_CHROMIUM}; .ci/run installs it)")
        pytest.skip(f"Chromium not found: {GET_CHROMIUM}")
    browser = start_browser(DESKTOP)
    yield browser
    browser.quit()
