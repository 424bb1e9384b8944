"""``make screenshots``: the browser tests' seed scenario and downgrade hold on a fresh ``make dev``
(signing in and changing plans through the Kinde stand-in's pages), then the organization screens
on a fresh ``make dev BILLING_CUSTOMER=organization``, saved at desktop and phone width into
docs/screenshots/ (the tests never write there). ``users`` or ``organizations`` as an argument
makes only those."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests import ROOT
from tests.browser.browser import (
    DESKTOP,
    PHONE,
    Page,
    Shoot,
    hold_scenario,
    screenshot_to,
    seed_scenario,
    start_browser,
)
from tests.browser.organizations import org_dev_stack, organization_screens
from tests.integration.local_stack import DevStack, start_dev

OUT = ROOT / "docs" / "screenshots"


def users(page: Page, stack: DevStack, shoot: Shoot) -> None:
    seed_scenario(page, "kp_alice", shoot)
    token = stack.token("kp_bob", "pro")
    for number, name in enumerate(("Electricity", "Water", "Broadband"), start=1):
        assert stack.add_account(token, name, f"BOB-00{number}").status_code == 201
    page.sign_out()
    hold_scenario(page, "kp_bob", shoot)


SETS: dict[str, tuple[Callable[[Path], DevStack], Callable[[Page, DevStack, Shoot], None]]] = {
    "users": (start_dev, users),
    "organizations": (org_dev_stack, organization_screens),
}


def main(argv: list[str]) -> int:
    chosen = argv or list(SETS)
    unknown = [name for name in chosen if name not in SETS]
    if unknown:
        print(f"unknown screenshot sets {unknown}: choose from {list(SETS)}", file=sys.stderr)
        return 2
    for name in chosen:
        start, flow = SETS[name]
        for viewport in (DESKTOP, PHONE):  # each on a fresh make dev, so both start with no accounts
            with tempfile.TemporaryDirectory(prefix="planguard-screenshots-") as tmp:
                stack = start(Path(tmp))
                driver = start_browser(viewport)
                try:
                    page = Page(driver, stack.api)
                    flow(page, stack, screenshot_to(page, OUT, viewport))
                finally:
                    driver.quit()
                    stack.stop()
    for path in sorted(OUT.glob("*.png")):
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
