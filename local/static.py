"""The dashboard's files: GET/HEAD requests that match no template route are served from frontend/,
files only, never outside it; anything the file system refuses is simply no file (the gateway's 404).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from local.web import HttpResponse

FRONTEND_DIR = Path(__file__).resolve().parents[1] / "frontend"
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


def static_response(path: str) -> HttpResponse | None:
    """The dashboard's file at ``path``, or None (then the path has no route: 404, never a 5xx)."""
    file = static_file(path)
    if file is None:
        return None
    try:
        body = file.read_bytes()
    except OSError:
        return None
    return HttpResponse(200, [("Content-Type", STATIC_TYPES[file.suffix]), *STATIC_HEADERS], body)
