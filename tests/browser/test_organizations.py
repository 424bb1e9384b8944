"""The dashboard in organization mode, in real headless Chromium against a ``make dev
BILLING_CUSTOMER=organization`` of its own (writing needs a permission there): members of one
organization share one list and one limit, a read-only member gets the read-only page, another
organization's member sees none of it, a member of several switches between them, a member signed
in to Kinde's default organization is told why there is nothing, and the organization's plan page
opens in Kinde's portal. axe-core checks every one of these screens."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from planguard.errors import LIMIT_REACHED_MESSAGE
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.browser import DESKTOP, GET_CHROMIUM, PHONE, Page, chromium, set_viewport, start_browser
from tests.browser.organizations import WRITE, member, org_add, org_dev_stack
from tests.integration.local_stack import DevStack

if chromium() is None:  # one line locally; in CI (.ci/run installs Chromium) a failure
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Chromium is missing in CI: {GET_CHROMIUM}", pytrace=False)
    pytest.skip(f"Chromium not found: {GET_CHROMIUM}", allow_module_level=True)


@pytest.fixture(scope="module")
def org_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    stack = org_dev_stack(tmp_path_factory.mktemp("org-dev"))
    yield stack
    assert stack.stop() == 0, stack.stderr


@pytest.fixture
def second_driver() -> Iterator[WebDriver]:
    """Another browser: another member's session, its storage apart from the first's."""
    browser = start_browser(DESKTOP)
    yield browser
    browser.quit()


def account_row(page: Page, name: str) -> str:
    for row in page.rows():
        if row.find_element(By.CLASS_NAME, "account-name").text == name:
            return row.text
    raise AssertionError(f"no row {name!r} in {page.row_texts()}")


def write_controls(page: Page) -> int:
    return len(page.driver.find_elements(By.CSS_SELECTOR, "#accounts .edit, #accounts .delete"))


@pytest.mark.timeout(300)
def test_two_members_share_one_list_and_one_limit(
    org_dev: DevStack, driver: WebDriver, second_driver: WebDriver
) -> None:
    member(org_dev, "kp_ann", "org_team", [WRITE])
    member(org_dev, "kp_ben", "org_team", [WRITE])
    ann, ben = Page(driver, org_dev.api), Page(second_driver, org_dev.api)
    ann.open()
    ann.sign_in("kp_ann", "pro", org="org_team")  # the organization's plan
    ann.wait_text("usage-text", "0 of 5 tracked accounts")
    ann.wait_text("org-text", "You are working for the organization org_team, on its pro plan.")
    assert ann.text("session-org") == "for org_team"
    assert ann.text("session-plan") == "Plan: pro"  # from GET /usage, not the SDK
    assert ann.text("list-title") == "Tracked accounts of org_team"
    assert ann.text("plan-current") == "org_team is on the pro plan."
    assert not ann.by_id("org-readonly").is_displayed()
    assert not ann.by_id("org-switch").is_displayed()  # a member of one organization
    ann.wait_text("list-status", "No tracked accounts yet. Add the first one above.")
    ann.assert_accessible("an organization's empty list")

    ben.open()
    ben.sign_in("kp_ben", "", org="org_team")
    ben.wait_text("usage-text", "0 of 5 tracked accounts")

    ann.add("Electricity", "TEAM-1")
    ann.wait_text("usage-text", "1 of 5 tracked accounts")
    assert "Added by you" in account_row(ann, "Electricity")

    ben.open()  # a reload shows what the other member added
    ben.wait_text("usage-text", "1 of 5 tracked accounts")
    ben.wait(lambda d: ben.row_texts() == ["Electricity"], "the other member's account never showed")
    assert "Added by kp_ann" in account_row(ben, "Electricity")
    names = ["Electricity", "Water", "Broadband", "Council tax", "Mobile phone"]
    for i, name in enumerate(names[1:], start=2):
        ben.add(name, f"TEAM-{i}")
        ben.wait_text("usage-text", f"{i} of 5 tracked accounts")
    assert "Added by you" in account_row(ben, "Water")
    ben.assert_accessible("an organization's list, full")

    ann.open()
    ann.wait_text("usage-text", "5 of 5 tracked accounts")
    ann.wait(lambda d: ann.row_texts() == names, "the shared list never showed")
    assert "Added by kp_ben" in account_row(ann, "Mobile phone")
    refused = LIMIT_REACHED_MESSAGE.format(limit=5)
    for page, number in ((ann, "TEAM-6"), (ben, "TEAM-7")):  # the organization's one limit, for both
        page.add("Gas", number)
        page.wait_text("usage-limit", refused)
        assert len(page.rows()) == 5
        assert page.text("add-error") == ""
        page.assert_accessible("an organization at its limit")


@pytest.mark.timeout(180)
def test_a_read_only_member_gets_the_read_only_page(org_dev: DevStack, driver: WebDriver) -> None:
    member(org_dev, "kp_wendy", "org_readers", [WRITE])
    member(org_dev, "kp_rita", "org_readers", [])  # may read, not write
    for i, name in enumerate(("Electricity", "Water"), start=1):
        assert org_add(org_dev, "kp_wendy", "org_readers", name, f"READ-{i}").status_code == 201
    page = Page(driver, org_dev.api)
    page.open()
    page.sign_in("kp_rita", "pro", org="org_readers")
    page.wait_text("usage-text", "2 of 5 tracked accounts")
    page.wait_text("org-readonly", "Your role in org_readers lets you see its tracked accounts but not add")
    assert page.by_id("org-readonly").is_displayed()
    page.wait(lambda d: page.row_texts() == ["Electricity", "Water"], "the list never showed")
    assert not page.by_id("add-card").is_displayed()
    assert write_controls(page) == 0
    assert "Added by kp_wendy" in account_row(page, "Water")
    page.wait_text("list-status", "")
    page.assert_accessible("a read-only member")

    set_viewport(driver, PHONE)
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone"
    page.assert_accessible("a read-only member at phone width")


@pytest.mark.timeout(180)
def test_another_organizations_member_sees_none_of_it(org_dev: DevStack, driver: WebDriver) -> None:
    member(org_dev, "kp_hana", "org_private", [WRITE])
    assert org_add(org_dev, "kp_hana", "org_private", "Private", "PRIV-1").status_code == 201
    member(org_dev, "kp_oscar", "org_elsewhere", [WRITE])
    page = Page(driver, org_dev.api)
    page.open()
    page.sign_in("kp_oscar", "", org="org_elsewhere")
    page.wait_text("org-text", "You are working for the organization org_elsewhere")
    page.wait_text("usage-text", "0 of 3 tracked accounts")  # a new organization starts on free
    page.wait_text("list-status", "No tracked accounts yet.")
    assert page.row_texts() == []
    assert "org_private" not in driver.find_element(By.TAG_NAME, "body").text
    page.assert_accessible("another organization")


@pytest.mark.timeout(240)
def test_a_member_of_several_organizations_switches(org_dev: DevStack, driver: WebDriver) -> None:
    for org, name in (("org_north", "North account"), ("org_south", "South account")):
        member(org_dev, "kp_sam", org, [WRITE])
        assert org_add(org_dev, "kp_sam", org, name, f"{org}-1").status_code == 201
    page = Page(driver, org_dev.api)
    page.open()
    page.sign_in("kp_sam", "", org="org_north")
    page.wait_text("session-org", "for org_north")
    page.wait(lambda d: page.row_texts() == ["North account"], "org_north's list never showed")
    page.wait(lambda d: page.by_id("org-switch").is_displayed(), "no switch for a member of two")
    options = driver.execute_script(
        "return [...document.querySelectorAll('#org-select option')].map(o => o.value)"
    )
    assert options == ["org_south"]
    page.assert_accessible("the organization switch")

    page.by_id("org-button").click()  # Kinde's sign-in, asked for org_south (the SDK's login({orgCode}))
    page.wait(lambda d: d.find_elements(By.ID, "user"), "Kinde's sign-in page never showed")
    assert "org_code=org_south" in driver.current_url
    page.on_kinde_sign_in("kp_sam", "", org="org_south")
    page.wait_text("session-org", "for org_south")
    page.wait(lambda d: page.row_texts() == ["South account"], "org_south's list never showed")
    options = driver.execute_script(
        "return [...document.querySelectorAll('#org-select option')].map(o => o.value)"
    )
    assert options == ["org_north"]
    page.assert_accessible("after switching organizations")


@pytest.mark.timeout(180)
def test_kindes_default_organization_shows_why_there_is_nothing(org_dev: DevStack, driver: WebDriver) -> None:
    member(org_dev, "kp_dora", "org_team_d", [WRITE])
    page = Page(driver, org_dev.api)
    page.open()
    page.sign_in("kp_dora", "", org="org_default")
    page.wait_text("org-text", "You are not signed in to one of your organizations")
    for card in ("usage-card", "add-card", "list-card", "plan-card"):
        assert not page.by_id(card).is_displayed(), card
    assert not page.by_id("session-plan").is_displayed()
    page.wait(lambda d: page.by_id("org-switch").is_displayed(), "no switch to the member's organization")
    options = driver.execute_script(
        "return [...document.querySelectorAll('#org-select option')].map(o => o.value)"
    )
    assert options == ["org_team_d"]
    page.assert_accessible("no organization")


@pytest.mark.timeout(240)
def test_change_plan_opens_the_organizations_plan_page(org_dev: DevStack, driver: WebDriver) -> None:
    member(org_dev, "kp_paul", "org_billing", [WRITE])
    page = Page(driver, org_dev.api)
    page.open()
    page.sign_in("kp_paul", "pro", org="org_billing")
    page.wait_text("usage-text", "0 of 5 tracked accounts")
    page.wait_text("plan-current", "org_billing is on the pro plan.")
    page.wait_text("plan-check", "You can move to free now.")
    page.open_portal("free")  # the portal link asked for subnav=organization_plan_selection
    assert "(asked for: organization_plan_selection)" in driver.find_element(By.TAG_NAME, "main").text
    page.assert_accessible("Kinde's portal, opened on the organization's plan page")
    page.back_from_portal()
    page.wait_text("notice", "Back from Kinde. org_billing is on the pro plan.")
