"""The dashboard in real headless Chromium against a ``make dev`` of its own."""

from __future__ import annotations

import os

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.browser import (
    GET_CHROMIUM,
    PHONE,
    Page,
    chromium,
    seed_scenario,
    set_offline,
    set_viewport,
)
from tests.integration.local_stack import DevStack

if chromium() is None:  # one line locally; in CI (.ci/run installs Chromium) a failure
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Chromium is missing in CI: {GET_CHROMIUM}", pytrace=False)
    pytest.skip(f"Chromium not found: {GET_CHROMIUM}", allow_module_level=True)


@pytest.mark.timeout(300)
def test_the_seed_scenario_in_the_browser(dev: DevStack, driver: WebDriver) -> None:
    seed_scenario(Page(driver, dev.api), "kp_browser_seed")


def test_paging_reload_offline_and_sign_out(dev: DevStack, driver: WebDriver) -> None:
    token = dev.token("kp_browser_pages", "pro")
    for i in range(1, 4):
        assert dev.add_account(token, f"Account {i}", f"P-{i}").status_code == 201
    page = Page(driver, dev.api)
    page.open("?pageSize=2")
    page.sign_in("kp_browser_pages", "pro")
    page.wait_text("usage-text", "3 of 5 tracked accounts")
    page.wait(lambda d: page.row_texts() == ["Account 1", "Account 2"], "the first page never showed")
    assert page.by_id("load-more").is_displayed()
    page.by_id("load-more").click()
    page.wait(lambda d: len(page.rows()) == 3, "the second page never showed")
    assert not page.by_id("load-more").is_displayed()

    page.open("?pageSize=2")  # a reload keeps the sign-in for the tab
    page.wait_text("usage-text", "3 of 5 tracked accounts")

    set_offline(driver, True)
    page.wait(lambda d: page.by_id("offline").is_displayed(), "no offline banner")
    page.add("Offline", "OFF-1")
    page.wait_text("add-error", "offline")
    set_offline(driver, False)
    page.wait(lambda d: not page.by_id("offline").is_displayed(), "the offline banner stayed")

    page.by_id("sign-out").click()
    page.wait(lambda d: page.by_id("signin").is_displayed(), "sign-out did not show the sign-in")


def test_a_bad_token_is_sent_back_to_sign_in(dev: DevStack, driver: WebDriver) -> None:
    page = Page(driver, dev.api)
    page.open()
    page.driver.find_element(By.CSS_SELECTOR, "#paste-token summary").click()
    page.type("token-input", "not-a-token")
    page.by_id("token-signin").submit()
    page.wait_text("token-signin-error", "three parts separated by dots")
    page.type("token-input", "aaa.bbb.ccc")
    page.by_id("token-signin").submit()
    page.wait_text("dev-signin-error", "Your sign-in is missing, invalid or expired. Please sign in again.")
    assert page.by_id("signin").is_displayed()


def test_phone_width_fits_and_is_accessible(dev: DevStack, driver: WebDriver) -> None:
    set_viewport(driver, PHONE)
    token = dev.token("kp_browser_phone", "free")
    assert dev.add_account(token, "A very long account name that has to wrap on a phone", "0000-1111-2222").ok
    page = Page(driver, dev.api)
    page.open()
    page.sign_in("kp_browser_phone", "free")
    page.wait_text("usage-text", "1 of 3 tracked accounts")
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone"
    page.assert_accessible("phone width")


def test_a_pasted_kinde_token_works_without_the_stand_in_sign_in(dev: DevStack, driver: WebDriver) -> None:
    token = dev.token("kp_browser_pasted", "free")
    page = Page(driver, dev.api)
    page.open()
    page.driver.find_element(By.CSS_SELECTOR, "#paste-token summary").click()
    page.type("token-input", f"Bearer {token}")
    page.by_id("token-signin").submit()
    page.wait_text("usage-text", "0 of 3 tracked accounts")
    assert page.text("session-user") == "kp_browser_pasted"
    assert page.text("session-plan") == "Plan: see Kinde"
    assert not page.by_id("apply-after-field").is_displayed()
    page.change_plan("pro")  # checked with /plan-check, then changed in Kinde, not by the page
    assert "Plan changes happen in Kinde" in page.text("plan-result")
    page.wait_text("plan-check", "You can move to pro now.")
