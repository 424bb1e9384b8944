"""The issuer must be https outside loopback, in the settings and in the template's parameter."""

from __future__ import annotations

import re

import pytest
from planguard.settings import ConfigurationError, Settings

from local.template import load_template

ACCEPTED = [
    "https://acme.kinde.com",
    "https://acme.kinde.com/",
    "http://127.0.0.1:8123",
    "http://localhost:3001",
]
REFUSED = ["http://acme.kinde.com", "http://127.0.0.1.evil.com", "http://localhost.evil.com:80", "ftp://x"]


@pytest.mark.parametrize("issuer", ACCEPTED + REFUSED)
def test_issuer_is_https_outside_loopback(issuer: str) -> None:
    pattern = load_template().doc["Parameters"]["KindeIssuerUrl"]["AllowedPattern"]
    environ = {"TABLE_NAME": "t", "KINDE_ISSUER_URL": issuer}
    if issuer in ACCEPTED:
        assert Settings.from_env(environ).kinde_issuer_url == issuer.removesuffix("/")
        assert re.fullmatch(pattern, issuer)
    else:
        with pytest.raises(ConfigurationError, match="KINDE_ISSUER_URL"):
            Settings.from_env(environ)
        assert not re.fullmatch(pattern, issuer)
