"""``make screenshots``: the browser tests' seed scenario and downgrade hold on a fresh ``make dev``
(signing in and changing plans through the Kinde stand-in's pages), saved at desktop and phone
width into docs/screenshots/ (the tests never write there)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests import ROOT
from tests.browser.browser import (
    DESKTOP,
    PHONE,
    Page,
    hold_scenario,
    screenshot_to,
    seed_scenario,
    start_browser,
)
from tests.integration.local_stack import start_dev

OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    for viewport in (DESKTOP, PHONE):  # each on a fresh make dev, so both start with no accounts
        with tempfile.TemporaryDirectory(prefix="planguard-screenshots-") as tmp:
            stack = start_dev(Path(tmp))
            driver = start_browser(viewport)
            try:
                page = Page(driver, stack.api)
                shoot = screenshot_to(page, OUT, viewport)
                seed_scenario(page, "kp_alice", shoot)
                token = stack.token("kp_bob", "pro")
                for number, name in enumerate(("Electricity", "Water", "Broadband"), start=1):
                    assert stack.add_account(token, name, f"BOB-00{number}").status_code == 201
                page.sign_out()
                hold_scenario(page, "kp_bob", shoot)
            finally:
                driver.quit()
                stack.stop()
    for path in sorted(OUT.glob("*.png")):
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
