"""A local Kinde stand-in: sign-in, JWKS, tokens, the Account API, the portal, plan changes, webhooks.

It speaks the parts of Kinde that Plan Guard uses (docs/KINDE.md), from a local plan store: each user
has a plan code, and limits come from ``PLAN_LIMITS``. ``make dev`` runs it unless
``KINDE_ISSUER_URL`` is set; tests use it as a programmable Kinde on 127.0.0.1: plans per user
(``set_plan``), any answer the Account API or the JWKS endpoint should give next (``faults``,
``jwks_faults``: status, headers, raw body, delay), key rotation, a call counter.

One module per role it plays: ``keys`` (signing keys, JWKS, tokens), ``account_api`` (the plan
store and the Account API's answers), ``plan_changes`` (a plan selection runs the plan check),
``oauth`` (the browser sign-in: codes with PKCE, id and refresh tokens), ``portal`` (the self-serve
portal's links and plan selection), ``pages`` (its hosted pages' HTML), ``origins`` (which sites may
write), ``site`` (the browser's routes), ``webhooks`` (signed and delivered to the local API),
``faults`` (what tests queue); ``parts`` holds one of each, ``http`` is its HTTP surface over them,
``standin`` the server that composes them.
"""

from local.kinde.account_api import DEFAULT_PLAN
from local.kinde.faults import Fault
from local.kinde.keys import SigningKey, new_rsa_key
from local.kinde.standin import KindeStandIn
from local.kinde.webhooks import WEBHOOK_PATH, webhook_claims

__all__ = [
    "DEFAULT_PLAN",
    "WEBHOOK_PATH",
    "Fault",
    "KindeStandIn",
    "SigningKey",
    "new_rsa_key",
    "webhook_claims",
]
