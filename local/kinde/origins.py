"""Which sites may drive the stand-in from a browser: the dashboard's origins, and its own pages.

A browser sends ``Origin`` with every POST, a form's or a ``fetch`` with ``text/plain`` (which needs
no CORS preflight), so a write from another site is known by it. A page on another site that rebinds
its own DNS name to 127.0.0.1 (DNS rebinding) is same-origin with us in the browser's eyes, but its
requests carry that name in ``Host``: only loopback names are ours.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# What a browser says in Sec-Fetch-Site when the request did not come from another site's page.
OWN_FETCH_SITES = ("same-origin", "none")


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL (lower-cased, as browsers send it), else None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{f':{port}' if port is not None else ''}".lower()


def browser_origin(url: str) -> str | None:
    """The origin a browser would go to for ``url``, or None when a browser and Python might read
    it differently. Browsers take a backslash for a slash and drop tabs and newlines anywhere
    (``http://evil.example\\@127.0.0.1:3800/`` is evil.example to a browser, 127.0.0.1 to
    ``urlsplit``), so such a URL, or one carrying userinfo (``user@``), spaces or control
    characters, is no URL of ours."""
    if any(char == "\\" or char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        return None
    return origin_of(url)


def normalise_uri(uri: str) -> str:
    """A redirect or logout URI without one trailing slash: Kinde's SDK strips it when it signs in
    and sends it as configured when it asks for tokens, so both spellings are the same URI."""
    return uri[:-1] if uri.endswith("/") else uri


def loopback_twins(url: str) -> list[str]:
    """The origin of ``url`` under each loopback name (127.0.0.1 and localhost): the same page."""
    origin = origin_of(url)
    if origin is None:
        return []
    parts = urlsplit(origin)
    names = ("127.0.0.1", "localhost") if is_loopback_name(parts.hostname or "") else (parts.hostname,)
    port = f":{parts.port}" if parts.port is not None else ""
    return [f"{parts.scheme}://{name}{port}" for name in names]


def is_loopback_name(name: str) -> bool:
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """The name in a ``Host`` header (``[::1]:3001`` -> ``::1``, ``127.0.0.1:3001`` -> ``127.0.0.1``)."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


@dataclass
class SiteRules:
    """The dashboard's origins (CORS, redirect and logout URLs) and the stand-in's own (its pages'
    forms), from which a browser may write; every other site may not."""

    dashboard_origins: tuple[str, ...] = ()
    own_origins: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def for_dashboards(cls, urls: Iterable[str]) -> SiteRules:
        origins = [twin for url in urls if url.strip() != "*" for twin in loopback_twins(url)]
        return cls(tuple(dict.fromkeys(origins)))

    @property
    def redirect_uris(self) -> list[str]:
        """The callback URLs registered for the dashboard: its page at ``/`` on each origin."""
        return [f"{origin}/" for origin in self.dashboard_origins]

    def is_redirect_uri(self, uri: str) -> bool:
        return normalise_uri(uri) in {normalise_uri(known) for known in self.redirect_uris}

    def is_dashboard_url(self, url: str) -> bool:
        """A URL on one of the dashboard's origins (a portal's return URL, a logout redirect): its
        scheme, host and port as a browser reads them."""
        origin = browser_origin(url)
        return origin is not None and origin in self.dashboard_origins

    def cors_origin(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` for a request from ``origin``: the dashboard's only."""
        return origin if origin is not None and origin.lower() in self.dashboard_origins else None

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        """Why a state-changing request must be refused (None: it may go ahead). ``headers`` are
        looked up by lower-case name."""
        host = headers.get("host")
        if not host or not is_loopback_name(host_name(host.strip())):
            return f"Host {host!r} is not a loopback address: this stand-in answers only 127.0.0.1/localhost."
        origin = headers.get("origin")
        if origin is not None:
            if origin.lower() in (*self.dashboard_origins, *self.own_origins):
                return None
            return f"Origin {origin!r} is not the dashboard's: no writes from another site."
        site = headers.get("sec-fetch-site")
        if site is not None and site not in OWN_FETCH_SITES:
            return f"A request from another site ({site}) with no Origin: refused."
        return None  # not from a browser page (curl, make token, the tests)
