"""Organization mode for the browser tests and ``make screenshots``: a ``make dev
BILLING_CUSTOMER=organization`` where writing needs a permission, its members set up through the
Kinde stand-in's dev endpoints (as Kinde's admin screens would), and the organization screens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from planguard.errors import LIMIT_REACHED_MESSAGE

from tests.browser.browser import Page, Shoot
from tests.integration.local_stack import DevStack, start_dev

WRITE = "write:tracked_accounts"  # ACCOUNTS_WRITE_PERMISSION of these stacks


def org_dev_stack(local_dir: Path) -> DevStack:
    return start_dev(local_dir, BILLING_CUSTOMER="organization", ACCOUNTS_WRITE_PERMISSION=WRITE)


def org_token(dev: DevStack, user: str, org: str, permissions: list[str] | None = None) -> str:
    """An access token of ``user`` signed in to ``org`` (joined when new to it); ``permissions``
    replaces theirs there when given."""
    body: dict[str, Any] = {"user": user, "org": org}
    if permissions is not None:
        body["permissions"] = permissions
    response = requests.post(f"{dev.kinde}/dev/token", json=body, timeout=10)
    response.raise_for_status()
    return str(response.json()["access_token"])


def member(dev: DevStack, user: str, org: str, permissions: list[str]) -> None:
    """``user`` joins ``org`` with these role permissions."""
    org_token(dev, user, org, permissions)


def org_add(dev: DevStack, user: str, org: str, name: str, number: str) -> requests.Response:
    """POST /accounts as ``user`` working for ``org``."""
    return dev.add_account(org_token(dev, user, org), name, number)


def organization_screens(page: Page, dev: DevStack, shoot: Shoot) -> None:
    """``make screenshots``' organization screens: a member's shared list (with who added each
    account, and the switch to their other organization), the limit reached, a read-only member,
    and a member signed in to Kinde's default organization."""
    member(dev, "kp_alice", "org_acme", [WRITE])
    member(dev, "kp_alice", "org_globex", [WRITE])
    member(dev, "kp_bob", "org_acme", [WRITE])
    member(dev, "kp_rita", "org_acme", [])
    for number, name in enumerate(("Electricity", "Water", "Broadband"), start=1):
        assert org_add(dev, "kp_bob", "org_acme", name, f"ACME-00{number}").status_code == 201
    page.open()
    page.sign_in("kp_alice", "pro", org="org_acme")
    page.wait_text("usage-text", "3 of 5 tracked accounts")
    page.wait(lambda d: page.by_id("org-switch").is_displayed(), "the switch never showed")
    page.add("Council tax", "ACME-004")
    page.wait_text("usage-text", "4 of 5 tracked accounts")
    shoot("organization-list")
    page.add("Mobile phone", "ACME-005")
    page.add("Gas", "ACME-006")
    page.wait_text("usage-limit", LIMIT_REACHED_MESSAGE.format(limit=5))
    shoot("organization-limit-reached")
    page.sign_out()
    page.sign_in("kp_rita", "", org="org_acme")
    page.wait_text("org-readonly", "Your role in org_acme")
    page.wait_text("usage-text", "5 of 5 tracked accounts")
    shoot("organization-read-only")
    page.sign_out()
    page.sign_in("kp_alice", "", org="org_default")
    page.wait_text("org-text", "You are not signed in to one of your organizations")
    page.wait(lambda d: page.by_id("org-switch").is_displayed(), "the switch never showed")
    shoot("organization-none")
