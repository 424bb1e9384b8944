"""Kinde's self-serve portal, played: the Account API's one-time ``portal_link``, and the billing page
it opens, where choosing a plan goes through the stand-in's plan-change path (Kinde runs the
``user:plan_selection`` workflow) and the answer is shown as Kinde's portal shows it, with a way
back to the ``return_url``."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from local.kinde.origins import SiteRules
from local.kinde.plan_changes import PlanChanges

PORTAL_PATH = "/portal"
# Kinde's portal sections (the SDK's PortalPage): ``subnav`` names one; the SDK's default is profile.
SUBNAVS = (
    "profile",
    "plan_selection",
    "plan_details",
    "payment_details",
    "organization_details",
    "organization_members",
    "organization_plan_details",
    "organization_payment_details",
    "organization_plan_selection",
)
LINK_SECONDS = 300  # an unused portal link
SESSION_SECONDS = 3600  # an opened portal
MAX_DELAY_SECONDS = 86400


@dataclass(frozen=True)
class Timing:
    """When Kinde applies a selected plan: at once, after ``apply_after`` seconds, or never
    (``fails``: its payment does not go through)."""

    apply_after: float = 0
    fails: bool = False

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Timing:
        when = form.get("when", "now")
        if when == "now":
            return cls()
        if when == "fails":
            return cls(fails=True)
        delay = form.get("delay", "").strip()
        if when == "later" and re.fullmatch(r"[0-9]{1,6}", delay) and 1 <= int(delay) <= MAX_DELAY_SECONDS:
            return cls(apply_after=int(delay))
        if when == "later":
            raise ValueError(f"Give the delay in whole seconds, from 1 to {MAX_DELAY_SECONDS}.")
        raise ValueError("Choose when the change applies.")


def select_plan(changes: PlanChanges, user: str, plan: str, timing: Timing) -> dict[str, Any]:
    """The portal's one call into the plan-change path (the one ``make plan`` takes): the workflow
    runs, then the plan applies as ``timing`` says (at once, later, or never) or the change is
    denied. ``ValueError`` for an unknown plan."""
    return changes.request(user, plan, timing.apply_after, timing.fails)


@dataclass
class PortalSession:
    user: str
    return_url: str
    subnav: str
    expires_at: float
    result: dict[str, Any] | None = None  # the last plan change's answer
    error: str | None = None  # the last form's mistake


class Portal:
    """One-time links and the portal sessions they open (in memory: a restart closes them)."""

    def __init__(self, site: SiteRules, changes: PlanChanges, lock: threading.RLock) -> None:
        self.site = site
        self.changes = changes
        self.links: dict[str, PortalSession] = {}
        self.sessions: dict[str, PortalSession] = {}
        self._lock = lock

    def link(self, base_url: str, user: str, query: Mapping[str, str]) -> dict[str, str]:
        """``GET /account_api/v1/portal_link``: ``{"url"}`` of a one-time link to the portal.
        ``ValueError`` for a return URL off the dashboard's origins or an unknown section."""
        return_url = query.get("return_url", "")
        subnav = query.get("subnav") or query.get("sub_nav") or "profile"
        if not self.site.is_dashboard_url(return_url):
            raise ValueError(f"return_url {return_url!r} is not on the application's origins.")
        if subnav not in SUBNAVS:
            raise ValueError(f"subnav {subnav!r} is not a portal section ({', '.join(SUBNAVS)}).")
        key = secrets.token_urlsafe(24)
        with self._lock:
            now = time.time()
            self.links = {k: s for k, s in self.links.items() if s.expires_at > now}
            self.links[key] = PortalSession(user, return_url, subnav, now + LINK_SECONDS)
        return {"url": f"{base_url}{PORTAL_PATH}?key={key}"}

    def open(self, key: str) -> str | None:
        """Use a link (once): the new session's id, or None for an unknown, used or stale link."""
        with self._lock:
            opened = self.links.pop(key, None)
            if opened is None or opened.expires_at <= time.time():
                return None
            session_id = secrets.token_urlsafe(24)
            opened.expires_at = time.time() + SESSION_SECONDS
            self.sessions = {k: s for k, s in self.sessions.items() if s.expires_at > time.time()}
            self.sessions[session_id] = opened
        return session_id

    def session(self, session_id: str) -> PortalSession | None:
        with self._lock:
            found = self.sessions.get(session_id)
        return found if found is not None and found.expires_at > time.time() else None

    def choose(self, session: PortalSession, form: Mapping[str, str]) -> None:
        """A plan chosen on the portal page: its answer (or the form's mistake) kept for the page."""
        session.result, session.error = None, None
        plan = form.get("plan", "")
        try:
            timing = Timing.from_form(form)
            if not plan:
                raise ValueError("Choose a plan.")
            session.result = select_plan(self.changes, session.user, plan, timing)
        except ValueError as exc:
            session.error = str(exc)
