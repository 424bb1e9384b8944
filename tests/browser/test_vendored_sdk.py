"""Kinde's browser SDK is kept in frontend/vendor/ exactly as npm publishes it: the committed file's
SHA-256 is the one recorded beside it and the one of the package pinned in tests/browser's lock."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from local.static import FRONTEND_DIR

HERE = Path(__file__).resolve().parent
PACKAGE = "@kinde-oss/kinde-auth-pkce-js"
VERSION = "4.5.1"
VENDORED = FRONTEND_DIR / "vendor" / f"kinde-auth-pkce-js-{VERSION}.esm.js"
SUMS = FRONTEND_DIR / "vendor" / "SHA256SUMS"
INSTALLED = HERE / "node_modules" / PACKAGE / "dist" / "kinde-auth-pkce-js.esm.js"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_version_is_pinned_in_package_json_and_the_lock() -> None:
    manifest = json.loads((HERE / "package.json").read_text())
    assert manifest["devDependencies"][PACKAGE] == VERSION  # exact, no range
    lock = json.loads((HERE / "package-lock.json").read_text())
    assert lock["packages"][f"node_modules/{PACKAGE}"]["version"] == VERSION


def test_the_recorded_sha256_is_the_committed_files() -> None:
    recorded = {
        name: digest for digest, name in (line.split("  ", 1) for line in SUMS.read_text().splitlines())
    }
    assert recorded == {VENDORED.name: sha256(VENDORED)}


def test_the_committed_file_is_the_packages_byte_for_byte() -> None:
    if not INSTALLED.is_file():
        message = f"{INSTALLED} is missing: run make test (it runs npm ci in tests/browser)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    installed = json.loads((INSTALLED.parents[1] / "package.json").read_text())
    assert installed["version"] == VERSION
    assert sha256(VENDORED) == sha256(INSTALLED)


def test_the_page_loads_the_vendored_file_and_no_other_copy() -> None:
    """One ES module with no imports of its own, named with its version (a new version is a new
    file, so a cached old one is never mixed with a new page)."""
    assert not re.search(r"^\s*import\b|\bimport\(", VENDORED.read_text(), re.MULTILINE)
    users = [p.name for p in FRONTEND_DIR.glob("*.js") if "kinde-auth-pkce-js" in p.read_text()]
    assert users == ["auth.js"]
    assert f'from "./vendor/{VENDORED.name}"' in (FRONTEND_DIR / "auth.js").read_text()
    assert sorted(p.name for p in VENDORED.parent.iterdir()) == sorted([VENDORED.name, SUMS.name])
