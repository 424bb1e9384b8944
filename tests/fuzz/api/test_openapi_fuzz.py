"""Schemathesis, driven by docs/openapi.json, against the local gateway over real HTTP.

Every operation, positive and negative data, with valid tokens for three users in different plan
states, the usage API key, and tokens that must be refused. Pass: no 5xx, every 4xx the error
body, the response conforms to the document (status, content type, schema), and no broken
credential is ever let through.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local.kinde import KindeStandIn
from tests import ROOT
from tests.fuzz.api.harness import (
    FIGURES,
    FREE,
    FULL,
    PRO,
    assert_sound,
    fuzz_settings,
    running_stack,
    seeded,
)
from tests.support import organization_mode

schemathesis.serializer.alias("application/jwt", "text/plain")
SCHEMA = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}  # type: ignore[union-attr]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
USAGE_PREFIX = "/api/users/accounts/count/"
ORG_USAGE_PREFIX = "/api/organizations/accounts/count/"  # organization mode's, run in that mode
USAGE_PREFIXES = (USAGE_PREFIX, ORG_USAGE_PREFIX)
KINDE_ID = re.compile(r"[A-Za-z0-9_:.-]{1,128}")  # the contract's {kindeId} (and {orgCode})


def kinde_id_sent(url: str) -> str:
    """The ``{kindeId}`` (or ``{orgCode}``) a usage route received: its path segment, decoded as
    the gateway does."""
    path = urlsplit(url).path
    prefix = ORG_USAGE_PREFIX if path.startswith(ORG_USAGE_PREFIX) else USAGE_PREFIX
    return unquote(path.removeprefix(prefix).split("/", 1)[0])


def _credential_names(path: str) -> list[str]:
    names = [
        f"user:{PRO}",
        f"user:{PRO}",
        f"user:{FREE}",
        f"user:{FULL}",
        "usage-key:bearer",
        "usage-key:x-api-key",
    ]
    names += [
        "broken:expired",
        "broken:forged",
        "broken:unknown-kid",
        "broken:other-issuer",
        "broken:other-audience",
        "broken:m2m",
        "broken:no-sub",
        "broken:garbage",
        "broken:basic",
        "broken:wrong-key",
        "none",
    ]
    if path.startswith(USAGE_PREFIXES):  # the key is what these routes mostly see
        names += ["usage-key:x-api-key"] * 3
    return names


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"]
)
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_operation(label: str, mode: GenerationMode, env: Any, aws: None, kinde: KindeStandIn) -> None:
    operation = OPERATIONS[label]
    path = operation.path
    if path.startswith(ORG_USAGE_PREFIX):  # served only when Kinde bills organizations
        organization_mode(env)
    with running_stack(kinde) as stack:
        tokens = {**stack.tokens, "usage-key:x-api-key": "", "none": ""}

        @seeded
        @fuzz_settings()
        @given(
            case=operation.as_strategy(generation_mode=mode),
            credential=st.sampled_from(_credential_names(path)),
            account=st.one_of(st.none(), st.sampled_from(stack.account_ids)),
            user=st.one_of(st.none(), st.sampled_from([PRO, FREE, FULL, "kp_nobody"])),
        )
        def run(case: Any, credential: str, account: str | None, user: str | None) -> None:
            headers = dict(case.headers or {})
            for name in [h for h in headers if h.lower() in ("authorization", "x-api-key")]:
                del headers[name]
            if credential == "usage-key:x-api-key":
                headers["x-api-key"] = "test-usage-key"
            elif tokens[credential]:
                headers["Authorization"] = tokens[credential]
            case.headers = headers
            if account is not None and "id" in (case.path_parameters or {}):
                case.path_parameters = {**case.path_parameters, "id": account}
            if user is not None and "kindeId" in (case.path_parameters or {}):
                case.path_parameters = {**case.path_parameters, "kindeId": user}
            response = case.call(base_url=stack.url, session=stack.session, timeout=30)
            FIGURES["schemathesis requests"] += 1
            assert_sound(response)
            case.validate_response(response, checks=CHECKS)
            if credential.startswith("broken:") or credential == "none":
                # Never let through; the usage routes refuse a malformed {kindeId} (400) before
                # they look at the credential, the webhook route has no bearer auth at all (its
                # body is the credential).
                if path.startswith(USAGE_PREFIXES):
                    well_formed = KINDE_ID.fullmatch(kinde_id_sent(str(response.request.url)))
                    expected = 401 if well_formed else 400
                    assert response.status_code == expected, f"{credential}: {response.text}"
                elif path != "/webhooks/kinde":
                    assert response.status_code == 401, f"{credential} got {response.status_code}"

        run()
