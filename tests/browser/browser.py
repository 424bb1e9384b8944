"""Headless Chromium for the dashboard: Debian's ``chromium`` and ``chromium-driver`` driven by
selenium (never a downloaded browser), axe-core's accessibility check, full-page screenshots."""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

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
