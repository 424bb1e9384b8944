"""The dashboard in real headless Chromium against a ``make dev`` of its own, signing in through
Kinde's SDK on the stand-in's sign-in page and changing plans in the stand-in's portal."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.browser import (
    GET_CHROMIUM,
    PHONE,
    Page,
    chromium,
    hold_scenario,
    seed_scenario,
    set_offline,
    set_viewport,
)
from tests.integration.local_stack import DevStack, start_dev

if chromium() is None:  # one line locally; in CI (.ci/run installs Chromium) a failure
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Chromium is missing in CI: {GET_CHROMIUM}", pytrace=False)
    pytest.skip(f"Chromium not found: {GET_CHROMIUM}", allow_module_level=True)

REFRESH_TOKEN_KEY = "kinde_refreshToken0"  # where Kinde's SDK keeps it on a 127.0.0.1 page
SHORT_TOKEN_SECONDS = 45


def seed_accounts(dev: DevStack, user: str, count: int, plan: str = "pro") -> None:
    token = dev.token(user, plan)
    for i in range(1, count + 1):
        assert dev.add_account(token, f"Account {i}", f"P-{user}-{i}").status_code == 201


def stored_refresh_token(driver: WebDriver) -> str | None:
    value: str | None = driver.execute_script(f"return localStorage.getItem('{REFRESH_TOKEN_KEY}')")
    return value


@pytest.mark.timeout(300)
def test_the_seed_scenario_in_the_browser(dev: DevStack, driver: WebDriver) -> None:
    seed_scenario(Page(driver, dev.api), "kp_browser_seed")


@pytest.mark.timeout(180)
def test_a_pending_downgrade_shows_the_hold_on_the_meter(dev: DevStack, driver: WebDriver) -> None:
    seed_accounts(dev, "kp_browser_hold", 3)
    page = Page(driver, dev.api)
    page.open()
    hold_scenario(page, "kp_browser_hold")


@pytest.mark.timeout(180)
def test_over_the_limit_the_meter_says_how_many_to_remove(dev: DevStack, driver: WebDriver) -> None:
    """A plan applied after the user added more (set here directly, as Kinde applying a downgrade
    past the hold's maximum would): they keep their accounts, and the page says how many to remove."""
    seed_accounts(dev, "kp_browser_over", 5)
    page = Page(driver, dev.api)
    page.open()
    page.sign_in("kp_browser_over", "free")
    page.wait_text("usage-text", "5 of 3 tracked accounts")
    removal = "Your plan allows 3 tracked accounts: you have 2 more. Remove 2 to be within it"
    page.wait_text("usage-limit", removal)
    assert len(page.rows()) == 5
    page.assert_accessible("over the limit")


def test_paging_reload_offline_and_sign_out(dev: DevStack, driver: WebDriver) -> None:
    seed_accounts(dev, "kp_browser_pages", 3)
    page = Page(driver, dev.api)
    page.open("?pageSize=2")
    page.sign_in("kp_browser_pages", "pro")
    assert driver.current_url == f"{dev.api}/?pageSize=2"  # back where the sign-in started
    page.wait_text("usage-text", "3 of 5 tracked accounts")
    page.wait(lambda d: page.row_texts() == ["Account 1", "Account 2"], "the first page never showed")
    assert page.by_id("load-more").is_displayed()
    page.by_id("load-more").click()
    page.wait(lambda d: len(page.rows()) == 3, "the second page never showed")
    assert not page.by_id("load-more").is_displayed()

    page.open("?pageSize=2")  # a reload keeps the sign-in: the SDK's refresh token gets a new one
    page.wait_text("usage-text", "3 of 5 tracked accounts")

    set_offline(driver, True)
    page.wait(lambda d: page.by_id("offline").is_displayed(), "no offline banner")
    page.add("Offline", "OFF-1")
    page.wait_text("add-error", "offline")
    set_offline(driver, False)
    page.wait(lambda d: not page.by_id("offline").is_displayed(), "the offline banner stayed")

    assert stored_refresh_token(driver)
    page.sign_out()  # through Kinde's /logout?redirect= and back
    assert stored_refresh_token(driver) is None
    page.open()  # and it stays signed out
    page.wait(lambda d: page.by_id("signin").is_displayed(), "a reload signed in again")
    assert not page.by_id("dashboard").is_displayed()


def test_a_failed_sign_in_callback_is_reported(dev: DevStack, driver: WebDriver) -> None:
    page = Page(driver, dev.api)
    state = base64.urlsafe_b64encode(json.dumps({"kinde": {"event": "login"}}).encode()).decode()
    page.open(f"?code=not-a-code&state={state.rstrip('=')}")  # a callback this tab never asked for
    page.wait_text("signin-error", "Kinde did not complete the sign-in. Please try again.")
    assert page.by_id("signin").is_displayed()
    assert not page.by_id("dashboard").is_displayed()


def test_a_portal_that_does_not_open_is_reported(dev: DevStack, driver: WebDriver) -> None:
    page = Page(driver, dev.api)
    page.open()
    page.sign_in("kp_browser_noportal", "pro")
    page.wait_text("plan-check", "You can move to free now.")
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*portal_link*"]})
    try:
        page.by_id("plan-button").click()
        page.wait_text("plan-result", "plan page could not be opened, so your plan did not change.")
    finally:
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    assert driver.current_url.startswith(dev.api)
    assert page.text("plan-button") == "Change plan"
    assert page.text("session-plan") == "Plan: pro"


def test_phone_width_fits_and_is_accessible(dev: DevStack, driver: WebDriver) -> None:
    set_viewport(driver, PHONE)
    token = dev.token("kp_browser_phone", "free")
    assert dev.add_account(token, "A very long account name that has to wrap on a phone", "0000-1111-2222").ok
    page = Page(driver, dev.api)
    page.open()
    page.assert_accessible("sign-in at phone width")
    page.sign_in("kp_browser_phone", "free")  # the stand-in's page is checked at phone width too
    page.wait_text("usage-text", "1 of 3 tracked accounts")
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone"
    page.assert_accessible("phone width")


@pytest.fixture(scope="module")
def short_tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """A ``make dev`` whose stand-in's access tokens last 45 s (KINDE_TOKEN_SECONDS)."""
    stack = start_dev(tmp_path_factory.mktemp("short-tokens"), KINDE_TOKEN_SECONDS=str(SHORT_TOKEN_SECONDS))
    yield stack
    assert stack.stop() == 0, stack.stderr


@pytest.mark.timeout(240)
def test_the_sdk_refreshes_an_expired_access_token(short_tokens: DevStack, driver: WebDriver) -> None:
    page = Page(driver, short_tokens.api)
    page.open()
    page.sign_in("kp_browser_refresh", "pro")
    signed_in_at = time.time()
    page.add("Before", "R-1")
    page.wait_text("usage-text", "1 of 5 tracked accounts")
    first = stored_refresh_token(driver)
    # past the first access token's end (the SDK's timer refreshes 10 s before it)
    time.sleep(max(0.0, signed_in_at + SHORT_TOKEN_SECONDS + 3 - time.time()))
    page.add("After", "R-2")  # sent with a new access token, or the API would answer 401
    page.wait_text("usage-text", "2 of 5 tracked accounts")
    assert page.row_texts() == ["Before", "After"]
    assert page.by_id("dashboard").is_displayed()
    assert stored_refresh_token(driver) not in (None, first)  # rotated by the refresh grant
    assert "grant_type=refresh_token -> 200 (expires_in 45)" in short_tokens.stderr  # make dev's log
