"""The stand-in's origin rules, as a table: who may write, which URLs are the dashboard's."""

from __future__ import annotations

import pytest

from local.kinde.origins import SiteRules, host_name, normalise_uri, origin_of

RULES = SiteRules.for_dashboards(["http://127.0.0.1:3000", "https://app.example/", "*", ""])
RULES.own_origins = ("http://127.0.0.1:3001", "http://localhost:3001")


def test_the_dashboards_are_known_under_each_loopback_name() -> None:
    assert RULES.dashboard_origins == (
        "http://127.0.0.1:3000",
        "http://localhost:3000",
        "https://app.example",
    )
    assert RULES.redirect_uris == [
        "http://127.0.0.1:3000/",
        "http://localhost:3000/",
        "https://app.example/",
    ]


@pytest.mark.parametrize(
    ("uri", "registered"),
    [
        ("http://127.0.0.1:3000", True),  # the SDK's sign-in request strips the slash
        ("http://127.0.0.1:3000/", True),  # its token request sends it as configured
        ("https://app.example", True),
        ("http://127.0.0.1:3000//", False),  # one slash only
        ("http://127.0.0.1:3000/callback", False),
        ("http://127.0.0.1:3001/", False),
        ("https://app.example.evil/", False),
    ],
)
def test_redirect_uris_match_after_one_trailing_slash(uri: str, registered: bool) -> None:
    assert RULES.is_redirect_uri(uri) is registered


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"host": "127.0.0.1:3001"}, True),  # curl, make token: not a browser page
        ({"host": "localhost:3001", "origin": "http://127.0.0.1:3000"}, True),  # the dashboard
        ({"host": "[::1]:3001", "origin": "http://localhost:3001"}, True),  # the stand-in's own form
        ({"host": "127.0.0.1:3001", "origin": "https://evil.example"}, False),
        ({"host": "127.0.0.1:3001", "origin": "null"}, False),
        ({"host": "127.0.0.1:3001", "sec-fetch-site": "cross-site"}, False),
        ({"host": "127.0.0.1:3001", "sec-fetch-site": "same-site"}, False),
        ({"host": "127.0.0.1:3001", "sec-fetch-site": "none"}, True),  # typed in the address bar
        ({"host": "evil.example:3001", "origin": "http://127.0.0.1:3000"}, False),  # DNS rebinding
        ({"host": "127.0.0.2:3001"}, True),  # all of 127/8 is loopback
        ({"host": "10.0.0.5:3001"}, False),
        ({}, False),
    ],
)
def test_who_may_write(headers: dict[str, str], allowed: bool) -> None:
    assert (RULES.refusal(headers) is None) is allowed


def test_cors_is_for_the_dashboards_only() -> None:
    assert RULES.cors_origin("http://localhost:3000") == "http://localhost:3000"
    assert RULES.cors_origin("http://127.0.0.1:3001") is None  # its own pages need none
    assert RULES.cors_origin("https://evil.example") is None
    assert RULES.cors_origin(None) is None


def test_url_pieces() -> None:
    assert origin_of("HTTP://LocalHost:3000/x?y#z") == "http://localhost:3000"
    assert origin_of("http://[::1]:3000/") == "http://[::1]:3000"
    assert origin_of("javascript:alert(1)") is None
    assert origin_of("http://127.0.0.1:99999/") is None
    assert normalise_uri("http://a/") == "http://a" and normalise_uri("http://a//") == "http://a/"
    assert host_name("[::1]:3001") == "::1" and host_name("localhost") == "localhost"
    assert RULES.is_dashboard_url("https://app.example/?from=kinde-portal")
    assert not RULES.is_dashboard_url("https://app.example.evil/")


@pytest.mark.parametrize(
    ("url", "ours"),
    [
        ("http://127.0.0.1:3000/?from=kinde-portal#top", True),
        ("HTTP://LOCALHOST:3000/x", True),
        ("http://127.0.0.1:3000/?next=@evil.example", True),  # an @ in the query is not userinfo
        ("http://evil.example\\@127.0.0.1:3000/", False),  # a browser goes to evil.example
        ("http://127.0.0.1:3000\\@evil.example/", False),
        ("http:\\\\127.0.0.1:3000/", False),
        ("http://user:pw@127.0.0.1:3000/", False),
        ("http://@127.0.0.1:3000/", False),
        ("http://127.0.0.1:3000@evil.example/", False),
        ("http://127.0.0.1:3000\t/", False),  # browsers drop tabs and newlines: no second reading
        ("http://127.0.0.1:3000\n@evil.example/", False),
        (" http://127.0.0.1:3000/", False),
        ("http://127.0.0.1/", False),  # another port
        ("https://127.0.0.1:3000/", False),  # another scheme
        ("http:/127.0.0.1:3000/", False),
        ("//127.0.0.1:3000/", False),
        ("javascript://127.0.0.1:3000/%0aalert(1)", False),
    ],
)
def test_a_return_url_is_read_as_a_browser_reads_it(url: str, ours: bool) -> None:
    assert RULES.is_dashboard_url(url) is ours
