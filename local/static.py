"""The dashboard's files: GET/HEAD requests that match no template route are served from frontend/,
files only, never outside it; anything the file system refuses is simply no file (the gateway's 404).
The page signs in with Kinde (the stand-in, or a real one) on Kinde's own origin: its config.js is
served naming the issuer the local API trusts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

from local.web import HttpResponse

FRONTEND_DIR = Path(__file__).resolve().parents[1] / "frontend"
CONFIG_FILE = "config.js"
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
STATIC_HEADERS = [
    ("Cache-Control", "no-cache"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; connect-src 'self' https: http://127.0.0.1:* http://localhost:*; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
]


def static_file(path: str, root: Path = FRONTEND_DIR) -> Path | None:
    """The file under ``root`` that a URL path names (``/`` and folders: their index.html), or None."""
    relative = unquote(path).lstrip("/")
    if "\\" in relative or "\x00" in relative or any(part in ("..", ".") for part in relative.split("/")):
        return None
    try:
        candidate = (root / relative).resolve()
        if candidate.is_dir():
            candidate = candidate / "index.html"
        if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
            return None
    except (OSError, ValueError):  # a name the file system refuses (too long, odd bytes): no such file
        return None
    return candidate if candidate.suffix in STATIC_TYPES else None


def with_kinde_domain(config_js: str, domain: str) -> str:
    """The page's config with ``kinde.domain`` set to ``domain`` (its one ``domain`` key: the file's
    shape is fixed), so make dev's page signs in where the API's tokens come from, on any port."""
    replaced, count = re.subn(
        r'(\bdomain"?\s*:\s*)"[^"\\\n]*"', lambda m: m.group(1) + json.dumps(domain), config_js, count=1
    )
    if count != 1:
        raise ValueError("frontend/config.js names no kinde.domain")
    return replaced


def static_response(path: str, kinde_domain: str | None = None) -> HttpResponse | None:
    """The dashboard's file at ``path``, or None (then the path has no route: 404, never a 5xx);
    ``config.js`` naming ``kinde_domain`` when one is given."""
    file = static_file(path)
    if file is None:
        return None
    try:
        body = file.read_bytes()
    except OSError:
        return None
    if kinde_domain is not None and file == FRONTEND_DIR.resolve() / CONFIG_FILE:
        body = with_kinde_domain(body.decode(), kinde_domain).encode()
    return HttpResponse(200, [("Content-Type", STATIC_TYPES[file.suffix]), *STATIC_HEADERS], body)
