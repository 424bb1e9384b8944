"""The stand-in's parts, one of each role it plays; its HTTP surface answers from them."""

from __future__ import annotations

from dataclasses import dataclass

from local.kinde.account_api import PlanStore
from local.kinde.faults import FaultQueues
from local.kinde.keys import KeyRing
from local.kinde.management import Management
from local.kinde.organizations import Organizations
from local.kinde.origins import SiteRules
from local.kinde.plan_changes import PlanChanges
from local.kinde.site import Site
from local.kinde.webhooks import Webhooks


@dataclass
class Parts:
    keys: KeyRing
    plans: PlanStore
    plan_changes: PlanChanges
    webhooks: Webhooks
    faults: FaultQueues
    site: Site  # the browser's side: sign-in, tokens, logout, the portal
    rules: SiteRules  # who may write from a browser
    organizations: Organizations  # who belongs to which organization (their plans are in plans)
    management: Management  # the M2M grant and the Management API
