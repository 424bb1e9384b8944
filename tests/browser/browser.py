"""The browser tests' helpers: headless Chromium for the dashboard (Debian's ``chromium`` and
``chromium-driver`` driven by selenium, never a downloaded browser), axe-core's accessibility check,
full-page screenshots, and the seed's scenario driven through the page step by step.

The browser tests run the scenario and assert on what the page shows; ``make screenshots`` runs the
same flow and saves the page at the moments docs/DASHBOARD.md shows. The scenario signs in on the
Kinde stand-in's page and changes plans in its portal, as a user does with Kinde."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planguard.errors import LIMIT_REACHED_MESSAGE
from planguard.plan_rule import DENY_MESSAGE, deny_reasons
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

HERE = Path(__file__).resolve().parent
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
GET_CHROMIUM = "apt-get install chromium chromium-driver (as root) to run the dashboard's browser tests"


@dataclass(frozen=True)
class Viewport:
    name: str
    width: int
    height: int
    mobile: bool = False


DESKTOP = Viewport("desktop", 1280, 860)
PHONE = Viewport("phone", 390, 844, mobile=True)


def chromium() -> tuple[str, str] | None:
    """(browser, driver) of the system's Chromium, or None when it is not installed."""
    browser = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER_BIN") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if browser and Path(driver).is_file():
        return browser, driver
    return None


def start_browser(viewport: Viewport = DESKTOP) -> WebDriver:
    found = chromium()
    if found is None:
        raise RuntimeError(f"Chromium not found: {GET_CHROMIUM}")
    browser, driver_path = found
    options = Options()
    options.binary_location = browser  # with the driver's path below, Selenium Manager never downloads
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--lang=en-US",
        f"--window-size={max(viewport.width, 800)},{viewport.height}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_script_timeout(30)
    set_viewport(driver, viewport)
    return driver


def set_viewport(driver: WebDriver, viewport: Viewport) -> None:
    metrics = {
        "width": viewport.width,
        "height": viewport.height,
        "deviceScaleFactor": 1,
        "mobile": viewport.mobile,
    }
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def set_offline(driver: WebDriver, offline: bool) -> None:
    conditions = {"offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", conditions)


SERIOUS = ("serious", "critical")


def axe_violations(driver: WebDriver, impacts: tuple[str, ...] = SERIOUS) -> list[dict[str, Any]]:
    """axe-core's violations of the given impacts on the page as it is now."""
    if not AXE_JS.is_file():
        raise RuntimeError(f"{AXE_JS} is missing: run make test (it runs npm ci in tests/browser)")
    driver.execute_script(AXE_JS.read_text())
    results: Any = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(JSON.stringify(r.violations)), e => done(JSON.stringify({error: String(e)})));"
    )
    violations = json.loads(results)
    if isinstance(violations, dict):
        raise RuntimeError(f"axe-core failed: {violations['error']}")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in violations
        if v.get("impact") in impacts
    ]


def screenshot(driver: WebDriver, path: Path) -> None:
    """The whole page (beyond the viewport), as a PNG."""
    metrics: Any = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot: Any = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


# -- the seed scenario through the page ----------------------------------------------------------------------
WAIT_SECONDS = 20
Shoot = Callable[[str], None]


class Page:
    """The dashboard as a user sees it: find by id, type, click, wait for text."""

    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, query: str = "") -> None:
        self.driver.get(f"{self.base_url}/{query}")
        self.ready()

    def ready(self) -> None:
        """The dashboard has loaded and handled a sign-in or portal return, if this load is one."""
        self.wait(
            lambda d: (
                d.current_url.startswith(self.base_url)
                and d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
            ),
            "the dashboard never finished loading",
        )

    def wait(self, condition: Callable[[WebDriver], object], message: str = "") -> None:
        ignored = (StaleElementReferenceException, NoSuchElementException)
        WebDriverWait(self.driver, WAIT_SECONDS, ignored_exceptions=ignored).until(condition, message)

    def by_id(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id: str) -> str:
        return self.by_id(element_id).text

    def wait_text(self, element_id: str, expected: str) -> None:
        self.wait(
            EC.text_to_be_present_in_element((By.ID, element_id), expected),
            f"#{element_id} never showed {expected!r}",
        )

    def type(self, element_id: str, value: str) -> None:
        field = self.by_id(element_id)
        field.clear()
        field.send_keys(value)

    def usage(self) -> str:
        return self.text("usage-text")

    def sign_in(self, user: str, plan: str, shoot: Shoot | None = None, *, org: str | None = None) -> None:
        """ "Sign in with Kinde", then the stand-in's sign-in page (checked with axe-core), and back.
        ``org``: the organization to sign in to (typed on that page); ``plan`` "" keeps the plan."""
        self.by_id("sign-in").click()
        self.on_kinde_sign_in(user, plan, shoot, org=org)

    def on_kinde_sign_in(
        self, user: str, plan: str, shoot: Shoot | None = None, *, org: str | None = None
    ) -> None:
        """The stand-in's sign-in page, filled in and sent, and back on the dashboard."""
        self.wait(lambda d: d.find_elements(By.ID, "user"), "Kinde's sign-in page never showed")
        assert self.driver.title.startswith("Sign in to Plan Guard")
        self.assert_accessible("Kinde's sign-in page")
        self.type("user", user)
        if org is not None:
            self.type("org", org)
        Select(self.by_id("plan")).select_by_value(plan)
        if shoot:
            shoot("kinde-sign-in")
        self.by_id("sign-in").click()
        self.ready()
        self.wait(lambda d: self.by_id("dashboard").is_displayed(), "the dashboard never showed")
        self.wait_text("session-user", user)

    def sign_out(self) -> None:
        self.by_id("sign-out").click()
        self.ready()
        self.wait(lambda d: self.by_id("signin").is_displayed(), "sign-out did not show the sign-in")

    def add(self, name: str, number: str, *, keyboard: bool = False) -> None:
        """Add through the form; ``keyboard``: focus, type, Tab, type, Enter (no clicks)."""
        if keyboard:
            self.by_id("add-name").click()
            active = self.driver.switch_to.active_element
            active.send_keys(name, Keys.TAB)
            self.driver.switch_to.active_element.send_keys(number, Keys.ENTER)
        else:
            self.type("add-name", name)
            self.type("add-number", number)
            self.by_id("add-button").click()
        button = self.by_id("add-button")
        self.wait(lambda d: button.is_enabled() and button.text == "Add account", "the add never finished")

    def gone(self, name: str) -> Callable[[WebDriver], bool]:
        return lambda _driver: name not in self.row_texts()

    def rows(self) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, "#accounts > li")

    def row_texts(self) -> list[str]:
        script = "return [...document.querySelectorAll('#accounts .account-name')].map(e => e.textContent)"
        names: list[str] = self.driver.execute_script(script)
        return names

    def plan_options(self) -> list[str]:
        script = "return [...document.querySelectorAll('#plan-select option')].map(o => o.value)"
        options: list[str] = self.driver.execute_script(script)
        return options

    def open_portal(self, plan: str) -> None:
        """ "Change plan": our plan check, then Kinde's portal (the stand-in's page)."""
        Select(self.by_id("plan-select")).select_by_value(plan)
        self.by_id("plan-button").click()
        self.wait(lambda d: d.find_elements(By.ID, "current-plan"), "Kinde's portal never opened")

    def choose_in_portal(self, plan: str, when: str = "now", delay: int | None = None) -> str:
        """Pick a plan in the portal and when its payment goes through; the portal's answer."""
        self.by_id(f"plan-{plan}").click()
        self.by_id(f"when-{when}").click()
        if delay is not None:
            self.type("delay", str(delay))
        self.by_id("change-plan").click()
        self.wait(lambda d: d.find_elements(By.ID, "result"), "the portal never answered")
        return self.text("result")

    def back_from_portal(self) -> None:
        self.by_id("return").click()
        self.ready()
        self.wait(lambda d: self.by_id("dashboard").is_displayed(), "the dashboard never showed")

    def assert_accessible(self, where: str) -> None:
        violations = axe_violations(self.driver)
        assert violations == [], f"axe-core, {where}: {violations}"


def seed_scenario(page: Page, user: str, shoot: Shoot | None = None) -> None:
    """Sign in on pro, add 5, the 6th refused, the downgrade denied in Kinde's portal with the
    reasons, delete 2, the downgrade accepted, an add right after refused at the new limit."""
    snap = shoot or (lambda _name: None)
    page.open()
    page.wait(lambda d: page.by_id("signin").is_displayed())
    page.assert_accessible("sign-in")
    snap("sign-in")
    page.sign_in(user, "pro", shoot)
    page.wait_text("usage-text", "0 of 5 tracked accounts")
    page.wait_text("list-status", "No tracked accounts yet")
    page.wait_text("session-plan", "Plan: pro")  # from Kinde's entitlements
    page.wait(lambda d: page.plan_options() == ["free"], "the picker offers the current plan")

    # inline validation errors come from the API's fields
    page.add("   ", "ACC-000")
    page.wait_text("add-name-error", "Name must not be empty.")
    assert page.by_id("add-name").get_attribute("aria-invalid") == "true"
    assert page.text("add-error") == "Please correct the highlighted fields."

    names = ["Electricity", "Water", "Broadband", "Council tax", "Mobile phone"]
    for i, name in enumerate(names, start=1):
        page.add(name, f"ACC-00{i}", keyboard=i == 1)
        page.wait_text("usage-text", f"{i} of 5 tracked accounts")
        if i == 3:
            snap("list-with-meter")
    assert page.row_texts() == names  # oldest first
    assert page.text("add-name-error") == ""

    page.add("Gas", "ACC-006")
    limit_5 = LIMIT_REACHED_MESSAGE.format(limit=5)
    page.wait_text("usage-limit", limit_5)  # the meter turns into the API's message
    assert page.by_id("usage-limit").get_attribute("role") == "alert"
    assert page.text("add-error") == ""
    assert len(page.rows()) == 5
    page.assert_accessible("limit reached")
    snap("limit-reached")

    # our plan check says what would block it; Kinde's portal runs the workflow, which denies it
    page.wait_text("plan-check", "Remove 2 tracked accounts to move to free.")
    page.open_portal("free")
    assert page.text("current-plan") == "pro"
    page.assert_accessible("Kinde's portal")
    snap("portal")
    answer = page.choose_in_portal("free")
    assert answer.startswith("Plan change denied")
    assert page.driver.find_element(By.CSS_SELECTOR, "#result .deny-message").text == DENY_MESSAGE
    reasons = [li.text for li in page.driver.find_elements(By.CSS_SELECTOR, "#result .reasons li")]
    assert reasons == list(deny_reasons(5, 3))
    assert page.text("current-plan") == "pro"
    page.assert_accessible("downgrade denied in Kinde's portal")
    snap("downgrade-denied")
    page.back_from_portal()
    page.wait_text("notice", "Back from Kinde. You are on the pro plan.")
    page.wait_text("usage-text", "5 of 5 tracked accounts")  # /usage read again
    assert page.text("session-plan") == "Plan: pro"

    # rename and renumber one, and a duplicate number refused inline
    row = page.rows()[2]
    row.find_element(By.CLASS_NAME, "edit").click()
    name_field = page.driver.switch_to.active_element
    name_field.clear()
    name_field.send_keys("Fibre broadband")
    number_field = page.rows()[2].find_element(By.NAME, "accountNumber")
    number_field.clear()
    number_field.send_keys("ACC-001", Keys.ENTER)
    page.wait(lambda d: "is already tracked" in page.rows()[2].text, "no inline duplicate error")
    assert "You already track an account with this number." in page.rows()[2].text
    number_field = page.rows()[2].find_element(By.NAME, "accountNumber")
    number_field.clear()
    number_field.send_keys("FB-3003", Keys.ENTER)
    page.wait(lambda d: "Fibre broadband" in page.row_texts(), "the rename never showed")
    assert "FB-3003" in page.rows()[2].text

    for label in names[:2]:  # delete the two oldest
        first = page.rows()[0]
        assert first.find_element(By.CLASS_NAME, "account-name").text == label
        first.find_element(By.CLASS_NAME, "delete").click()
        page.wait(page.gone(label), f"{label} was never removed")
    page.wait_text("usage-text", "3 of 5 tracked accounts")
    page.wait_text("plan-check", "You can move to free now.")

    page.open_portal("free")
    assert page.choose_in_portal("free").startswith("Plan changed")
    assert page.text("current-plan") == "free"
    page.back_from_portal()
    page.wait_text("session-plan", "Plan: free")
    page.wait_text("usage-text", "3 of 3 tracked accounts")
    page.wait(lambda d: page.plan_options() == ["pro"], "the picker offers the current plan")

    page.add("Gas", "ACC-006")
    page.wait_text("usage-limit", LIMIT_REACHED_MESSAGE.format(limit=3))
    assert len(page.rows()) == 3
    page.assert_accessible("downgrade applied")


def hold_scenario(page: Page, user: str, shoot: Shoot | None = None) -> None:
    """A pro user with 3 accounts selects free in Kinde's portal, applied only later (payment
    pending): back on the dashboard the meter shows the downgrade hold, and adds stop at 3."""
    snap = shoot or (lambda _name: None)
    page.sign_in(user, "pro")
    page.wait_text("usage-text", "3 of 5 tracked accounts")
    page.open_portal("free")
    answer = page.choose_in_portal("free", "later", 600)
    assert answer.startswith("Plan change accepted")
    assert "Until then you stay on pro." in answer
    assert "A change to free is waiting" in page.text("pending")
    page.back_from_portal()
    page.wait_text("usage-hold", "A plan downgrade is in progress: you can keep at most 3")
    page.wait_text("usage-text", "3 of 3 tracked accounts")
    assert page.text("session-plan") == "Plan: pro"  # Kinde has not applied it yet

    page.add("Gas", "ACC-006")
    page.wait_text("usage-limit", LIMIT_REACHED_MESSAGE.format(limit=3))
    assert len(page.rows()) == 3
    page.assert_accessible("downgrade hold")
    snap("downgrade-hold")


def screenshot_to(page: Page, folder: Path, viewport: Viewport) -> Shoot:
    def shoot(name: str) -> None:
        screenshot(page.driver, folder / f"{name}-{viewport.name}.png")

    return shoot
