"""``make screenshots``: the browser tests' seed scenario on a fresh ``make dev``, saved at desktop
and phone width into docs/screenshots/ (the tests never write there)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests import ROOT
from tests.browser.browser import DESKTOP, PHONE, Page, screenshot_to, seed_scenario, start_browser
from tests.integration.local_stack import start_dev

OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    for viewport in (DESKTOP, PHONE):  # each on a fresh make dev, so both start with no accounts
        with tempfile.TemporaryDirectory(prefix="planguard-screenshots-") as tmp:
            stack = start_dev(Path(tmp))
            driver = start_browser(viewport)
            try:
                page = Page(driver, stack.api)
                seed_scenario(page, "kp_alice", screenshot_to(page, OUT, viewport))
            finally:
                driver.quit()
                stack.stop()
    for path in sorted(OUT.glob("*.png")):
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
