"""make dev serves the dashboard at / (frontend/ only, right content types, its config.js naming the
issuer the API trusts) and passes nothing on to Kinde; no browser needed."""

from __future__ import annotations

import re

import pytest
import requests

from local.static import FRONTEND_DIR, static_file, with_kinde_domain
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


def test_config_js_names_the_issuer_the_api_trusts(dev: DevStack) -> None:
    served = requests.get(f"{dev.api}/config.js", timeout=10).text
    committed = (FRONTEND_DIR / "config.js").read_text()
    assert f'domain: "{dev.kinde}",' in served  # the stand-in, on whatever port it has
    assert served == with_kinde_domain(committed, dev.kinde)
    assert served.replace(dev.kinde, "http://127.0.0.1:3001") == committed  # nothing else changes


def test_with_kinde_domain_replaces_the_one_domain_key() -> None:
    assert with_kinde_domain('{"kinde": {"domain": "https://a.kinde.com"}}', "http://x") == (
        '{"kinde": {"domain": "http://x"}}'
    )
    with pytest.raises(ValueError, match=r"no kinde\.domain"):
        with_kinde_domain("export const config = {};", "http://x")


@pytest.mark.parametrize("path", ["/dev/token", "/dev/plan", "/dev/webhook", "/oauth2/token"])
def test_the_gateway_passes_nothing_on_to_kinde(dev: DevStack, path: str) -> None:
    """The page signs in and changes plans on Kinde's origin: a write here is no route, whoever sends it."""
    body = '{"user": "kp_static", "plan": "pro"}'
    response = requests.post(
        f"{dev.api}{path}", data=body, headers={"Content-Type": "text/plain"}, timeout=10
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
