"""The stand-in as one server: its parts composed, their state kept in one file under one lock.

Tests program it by the names below (``set_plan``, ``faults``, ``plan_limits``, ``mint``...), each
passed through to the part that plays that role.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from local.kinde.account_api import PlanLimits, PlanStore, entitlement_body, entitlements_body
from local.kinde.faults import Fault, FaultQueues
from local.kinde.http import handler_class
from local.kinde.keys import KeyRing, SigningKey
from local.kinde.management import DEV_M2M_CLIENT_ID, DEV_M2M_CLIENT_SECRET, Management
from local.kinde.oauth import DEFAULT_TOKEN_SECONDS, OAuth
from local.kinde.organizations import Organizations, org_plan_key
from local.kinde.origins import SiteRules, loopback_twins
from local.kinde.parts import Parts
from local.kinde.plan_changes import PlanChangeHook, PlanChanges
from local.kinde.portal import Portal
from local.kinde.site import Site
from local.kinde.webhooks import Webhooks
from local.web import BackgroundHTTPServer


class _PartAttribute[T]:
    """An attribute of one of the parts, read and set through the stand-in under another name."""

    def __init__(self, part: str, name: str) -> None:
        self.part, self.name = part, name

    def __get__(self, standin: Any, owner: Any = None) -> T:
        return cast(T, getattr(getattr(standin.parts, self.part), self.name))

    def __set__(self, standin: Any, value: T) -> None:
        setattr(getattr(standin.parts, self.part), self.name, value)


PRIVATE_FILE_MODE = 0o600  # the state file holds the private signing keys


def write_private(path: Path, text: str) -> None:
    """``text`` in a file only its owner can read, whatever the umask or a leftover file's mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), PRIVATE_FILE_MODE)
        out.write(text)


class KindeStandIn(BackgroundHTTPServer):
    keys = _PartAttribute[list[SigningKey]]("keys", "keys")
    plan_limits = _PartAttribute[PlanLimits]("plans", "plan_limits")
    plans = _PartAttribute[dict[str, str]]("plans", "plans")
    pending = _PartAttribute[dict[str, tuple[str, float]]]("plans", "pending")
    plan_change_hook = _PartAttribute[PlanChangeHook | None]("plan_changes", "hook")
    # Seconds the stand-in's clock (Kinde's: ``subscribed_on``, pending changes) runs ahead.
    clock_offset = _PartAttribute[float]("plans", "clock_offset")
    subscribed = _PartAttribute[dict[str, float]]("plans", "subscribed")
    page_size = _PartAttribute[int]("plans", "page_size")  # the entitlements list's page
    api_url = _PartAttribute[str | None]("webhooks", "api_url")  # the local API gateway
    webhooks = _PartAttribute[dict[str, str]]("webhooks", "sent")
    faults = _PartAttribute[list[Fault]]("faults", "account_api")  # the Account API's next answers
    jwks_faults = _PartAttribute[list[Fault]]("faults", "jwks")  # the JWKS endpoint's next answers
    account_api_calls = _PartAttribute[int]("faults", "account_api_calls")
    jwks_calls = _PartAttribute[int]("faults", "jwks_calls")
    # The Management API's and the client-credentials grant's next answers, and their counters.
    management_faults = _PartAttribute[list[Fault]]("faults", "management_api")
    m2m_token_faults = _PartAttribute[list[Fault]]("faults", "m2m_token")
    management_api_calls = _PartAttribute[int]("faults", "management_api_calls")
    m2m_token_calls = _PartAttribute[int]("faults", "m2m_token_calls")

    def __init__(
        self,
        plan_limits: PlanLimits,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
        audience: str | None = None,
        api_url: str | None = None,
        dashboard_urls: Sequence[str] = (),
        token_seconds: int = DEFAULT_TOKEN_SECONDS,
        m2m_client_id: str = DEV_M2M_CLIENT_ID,
        m2m_client_secret: str = DEV_M2M_CLIENT_SECRET,
        log: Callable[[str], None] = lambda _line: None,
    ) -> None:
        """``dashboard_urls``: the pages that sign in here (their origins get CORS, their ``/`` is a
        registered callback and logout URL); ``token_seconds``: the access tokens' ``expires_in``;
        ``m2m_client_id``/``m2m_client_secret``: the one M2M application the Management API serves;
        ``log``: where a line goes for each sign-in, token grant and portal choice."""
        self.state_file = state_file
        self._lock = threading.RLock()
        state = json.loads(state_file.read_text()) if state_file and state_file.exists() else {}
        if state_file and state_file.exists():
            state_file.chmod(PRIVATE_FILE_MODE)  # one written before the file was kept private
        keys = KeyRing(self._lock, self._save, KeyRing.from_state(state.get("keys", [])))
        plans = PlanStore(plan_limits, self._lock, self._save, state)
        plan_changes = PlanChanges(plans)
        rules = SiteRules.for_dashboards(dashboard_urls)
        self.organizations = Organizations(self._lock, self._save, state)
        self.oauth = OAuth(
            keys,
            plans,
            rules,
            self._lock,
            self._save,
            state=state,
            token_seconds=token_seconds,
            organizations=self.organizations,
        )
        self.portal = Portal(rules, plan_changes, self._lock)
        site = Site(self.oauth, self.portal, plans, rules, log)
        self.management = Management(
            keys,
            plans,
            m2m_client_id,
            m2m_client_secret,
            log=log,
            organizations=self.organizations,
        )
        self.parts = Parts(
            keys,
            plans,
            plan_changes,
            Webhooks(keys, api_url),
            FaultQueues(),
            site,
            rules,
            self.organizations,
            self.management,
        )
        if not keys.keys:
            keys.rotate()
        super().__init__(host, port, handler_class(self.parts))
        keys.issuer, keys.audience = self.url, audience
        rules.own_origins = tuple(loopback_twins(self.url))  # its own pages' forms
        self.mint = keys.mint
        self.rotate_key = keys.rotate
        self.jwks = keys.jwks
        self.plan_of = plans.plan_of
        self.set_plan = plans.set_plan
        self.request_plan_change = self.parts.plan_changes.request
        self.join_organization = self.organizations.join
        self.sign_webhook = self.parts.webhooks.sign
        self.deliver_webhook = self.parts.webhooks.deliver

    def org_plan_of(self, code: str) -> str:
        """An organization's plan now (a late change whose time has come is applied first)."""
        return self.parts.plans.plan_of(org_plan_key(code))

    def set_org_plan(self, code: str, plan: str) -> None:
        """The organization's plan, at once (it is created when new)."""
        self.organizations.add(code)
        self.parts.plans.set_plan(org_plan_key(code), plan)

    def mint_member(self, user: str, org: str, *, permissions: list[str] | None = None, **claims: Any) -> str:
        """An access token for ``user`` signed in to ``org`` (joining it when new to it), as Kinde's."""
        self.organizations.join(user, org, permissions)
        return self.mint(user, **{**self.organizations.claims(user, org), **claims})

    def entitlement_body(self, user_id: str, feature: str) -> dict[str, Any] | None:
        return entitlement_body(self.parts.plans, user_id, feature)

    def entitlements_body(self, user_id: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        return entitlements_body(self.parts.plans, user_id, query)

    def _save(self) -> None:
        """Plans, plan changes due later, the signing keys and refresh tokens (hashed), so tokens and
        a signed-in page survive a restart."""
        if not self.state_file:
            return
        with self._lock:
            state = {
                **self.parts.plans.to_state(),
                **self.oauth.to_state(),
                **self.organizations.to_state(),
                "keys": self.parts.keys.to_state(),
            }
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            write_private(tmp, json.dumps(state, indent=1))
            tmp.replace(self.state_file)
