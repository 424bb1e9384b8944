"""The stand-in as one server: its parts composed, their state kept in one file, one lock.

Tests program it by these names (``set_plan``, ``faults``, ``plan_limits``, ``mint``...), which
pass through to the part that plays that role.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from local.kinde.account_api import PlanLimits, PlanStore, entitlement_body, entitlements_body
from local.kinde.faults import Fault, FaultQueues
from local.kinde.http import Parts, handler_class
from local.kinde.keys import KeyRing, SigningKey
from local.kinde.plan_changes import PlanChangeHook, PlanChanges
from local.kinde.webhooks import Webhooks
from local.web import BackgroundHTTPServer


class KindeStandIn(BackgroundHTTPServer):
    def __init__(
        self,
        plan_limits: PlanLimits,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
        audience: str | None = None,
        api_url: str | None = None,
    ) -> None:
        self.state_file = state_file
        self._lock = threading.RLock()
        state = json.loads(state_file.read_text()) if state_file and state_file.exists() else {}
        saved = self._save
        self.key_ring = KeyRing(self._lock, saved, KeyRing.from_state(state.get("keys", [])))
        self.plan_store = PlanStore(plan_limits, self._lock, saved, state)
        self.plan_changes = PlanChanges(self.plan_store)
        self.webhook_sender = Webhooks(self.key_ring, api_url)  # api_url: the local API gateway
        self.fault_queues = FaultQueues()
        if not self.key_ring.keys:
            self.key_ring.rotate()
        parts = Parts(
            self.key_ring, self.plan_store, self.plan_changes, self.webhook_sender, self.fault_queues
        )
        super().__init__(host, port, handler_class(parts))
        self.key_ring.issuer = self.url
        self.key_ring.audience = audience

    def _save(self) -> None:
        if not self.state_file:
            return
        with self._lock:
            state = {**self.plan_store.to_state(), "keys": self.key_ring.to_state()}
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1))
            tmp.replace(self.state_file)

    # -- keys and tokens ---------------------------------------------------------------------------
    @property
    def keys(self) -> list[SigningKey]:
        return self.key_ring.keys

    def mint(
        self,
        user_id: str | None,
        *,
        ttl_seconds: int = 3600,
        key: SigningKey | None = None,
        issuer: str | None = None,
        **claims: Any,
    ) -> str:
        """A signed access token shaped like Kinde's, for ``user_id`` (None: no ``sub``)."""
        return self.key_ring.mint(user_id, ttl_seconds=ttl_seconds, key=key, issuer=issuer, **claims)

    def rotate_key(self) -> SigningKey:
        return self.key_ring.rotate()

    def jwks(self) -> dict[str, Any]:
        return self.key_ring.jwks()

    # -- plans and the Account API -----------------------------------------------------------------
    @property
    def plan_limits(self) -> PlanLimits:
        return self.plan_store.plan_limits

    @plan_limits.setter
    def plan_limits(self, value: PlanLimits) -> None:
        self.plan_store.plan_limits = value

    @property
    def plans(self) -> dict[str, str]:
        return self.plan_store.plans

    @property
    def pending(self) -> dict[str, tuple[str, float]]:
        return self.plan_store.pending

    def plan_of(self, user_id: str) -> str:
        return self.plan_store.plan_of(user_id)

    def set_plan(self, user_id: str, plan: str) -> None:
        self.plan_store.set_plan(user_id, plan)

    def entitlement_body(self, user_id: str, feature: str) -> dict[str, Any] | None:
        return entitlement_body(self.plan_store, user_id, feature)

    def entitlements_body(self, user_id: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        return entitlements_body(self.plan_store, user_id, query)

    # -- plan changes ------------------------------------------------------------------------------
    @property
    def plan_change_hook(self) -> PlanChangeHook | None:
        return self.plan_changes.hook

    @plan_change_hook.setter
    def plan_change_hook(self, hook: PlanChangeHook | None) -> None:
        self.plan_changes.hook = hook

    def request_plan_change(
        self, user_id: str, plan: str, apply_after: float = 0, fails: bool = False
    ) -> dict[str, Any]:
        """A plan selection as Kinde runs it (``PlanChanges.request``): applied at once, after
        ``apply_after`` seconds, or never (``fails``)."""
        return self.plan_changes.request(user_id, plan, apply_after, fails)

    @property
    def clock_offset(self) -> float:
        """Seconds the stand-in's clock (Kinde's: ``subscribed_on``, pending changes) runs ahead."""
        return self.plan_store.clock_offset

    @clock_offset.setter
    def clock_offset(self, seconds: float) -> None:
        self.plan_store.clock_offset = seconds

    @property
    def subscribed(self) -> dict[str, float]:
        return self.plan_store.subscribed

    # -- webhooks ----------------------------------------------------------------------------------
    @property
    def api_url(self) -> str | None:
        return self.webhook_sender.api_url

    @api_url.setter
    def api_url(self, url: str | None) -> None:
        self.webhook_sender.api_url = url

    @property
    def webhooks(self) -> dict[str, str]:
        return self.webhook_sender.sent

    def sign_webhook(self, event_type: str, data: dict[str, Any], *, event_id: str | None = None) -> str:
        return self.webhook_sender.sign(event_type, data, event_id=event_id)

    def deliver_webhook(self, body: str, webhook_id: str | None = None) -> dict[str, Any]:
        return self.webhook_sender.deliver(body, webhook_id)

    # -- test faults -------------------------------------------------------------------------------
    @property
    def faults(self) -> list[Fault]:
        """The Account API's next answers."""
        return self.fault_queues.account_api

    @faults.setter
    def faults(self, queue: list[Fault]) -> None:
        self.fault_queues.account_api = queue

    @property
    def jwks_faults(self) -> list[Fault]:
        """The JWKS endpoint's next answers."""
        return self.fault_queues.jwks

    @jwks_faults.setter
    def jwks_faults(self, queue: list[Fault]) -> None:
        self.fault_queues.jwks = queue

    @property
    def account_api_calls(self) -> int:
        return self.fault_queues.account_api_calls

    @account_api_calls.setter
    def account_api_calls(self, count: int) -> None:
        self.fault_queues.account_api_calls = count

    @property
    def jwks_calls(self) -> int:
        return self.fault_queues.jwks_calls

    @jwks_calls.setter
    def jwks_calls(self, count: int) -> None:
        self.fault_queues.jwks_calls = count
