"""make dev serves the dashboard at / (frontend/ only, right content types) and passes the page's
/dev/token and /dev/plan on to its Kinde stand-in; no browser needed."""

from __future__ import annotations

import re

import pytest
import requests

from local.static import FRONTEND_DIR, static_file
from tests.integration.local_stack import DevStack


def test_the_dashboard_is_served_at_the_root(dev: DevStack) -> None:
    page = requests.get(f"{dev.api}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert '<script type="module" src="app.js">' in page.text
    for name, kind in (
        ("app.js", "text/javascript"),
        ("styles.css", "text/css"),
        ("config.js", "text/javascript"),
    ):
        response = requests.get(f"{dev.api}/{name}", timeout=10)
        assert response.status_code == 200, name
        assert response.headers["Content-Type"].startswith(kind), name
    assert requests.head(f"{dev.api}/index.html", timeout=10).status_code == 200


def test_no_third_party_hosts_in_the_page() -> None:
    for path in FRONTEND_DIR.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):  # comments may show an example URL
            code = [line for line in path.read_text().splitlines() if not line.strip().startswith("//")]
            assert not re.search(r"https?://(?!127\.0\.0\.1|localhost)", "\n".join(code)), path


@pytest.mark.parametrize(
    "path",
    ["/../pyproject.toml", "/%2e%2e/pyproject.toml", "/..%2fMakefile", "/%5c..%5cMakefile", "/nope.js"],
)
def test_nothing_outside_frontend_is_served(dev: DevStack, path: str) -> None:
    response = requests.get(f"{dev.api}{path}", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_static_file_stays_inside_its_folder() -> None:
    assert static_file("/") == FRONTEND_DIR / "index.html"
    assert static_file("/app.js") == FRONTEND_DIR / "app.js"
    for path in (
        "/../Makefile",
        "/./app.js",
        "/%2e%2e/Makefile",
        "/a%00.js",
        "/..\\Makefile",
        "/x/../../Makefile",
    ):
        assert static_file(path) is None, path


def test_the_routes_still_win_and_other_methods_are_not_static(dev: DevStack) -> None:
    assert requests.get(f"{dev.api}/usage", timeout=10).status_code == 401
    response = requests.post(f"{dev.api}/index.html", timeout=10)
    assert response.status_code == 404


def test_dev_token_and_plan_pass_through_to_the_stand_in(dev: DevStack) -> None:
    minted = requests.post(f"{dev.api}/dev/token", json={"user": "kp_static", "plan": "pro"}, timeout=10)
    assert minted.status_code == 200
    token = minted.json()["access_token"]
    usage = requests.get(f"{dev.api}/usage", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert usage.json()["tracked_accounts"]["limit"] == 5
    changed = requests.post(f"{dev.api}/dev/plan", json={"user": "kp_static", "plan": "free"}, timeout=30)
    assert (changed.status_code, changed.json()["plan"]) == (200, "free")
    bad = requests.post(f"{dev.api}/dev/plan", json={"user": "kp_static", "plan": "gold"}, timeout=10)
    assert bad.status_code == 400
    # only those two: the webhook sender stays on the stand-in's own port
    assert requests.post(f"{dev.api}/dev/webhook", json={"user": "kp_static"}, timeout=10).status_code == 404
