"""``make reconcile``: recount a user's (or an organization's) accounts and repair the usage counter."""

from __future__ import annotations

import argparse

from planguard.dynamodb import dynamodb_client
from planguard.settings import BillingCustomer
from planguard.usage_counter import UsageCounter

from local.commands.common import local_stack
from local.config import PLAN_CHECK_FUNCTION, LocalConfig, resource_names
from local.dynamodb import local_client


def reconcile(config: LocalConfig, options: argparse.Namespace) -> int:
    """On the local stack's data, or with ``--table`` on a deployed table (default AWS credentials).
    ``--org``: the organization's counter (its ``ORG#`` partition) instead of the user's."""
    org: str | None = getattr(options, "org", None)
    customer: BillingCustomer = "organization" if org else "user"
    whose: str = org or options.user
    if options.table:
        before, actual = UsageCounter(dynamodb_client(), options.table, kind=customer).reconcile(whose)
    else:
        env = config.template.resolve_environment(PLAN_CHECK_FUNCTION, {}, resource_names(config.template))
        with local_stack(config) as (endpoints, _):
            counter = UsageCounter(local_client(endpoints.dynamodb), env["TABLE_NAME"], kind=customer)
            before, actual = counter.reconcile(whose)
    if before == actual:
        print(f"{whose}: counter {before}, {actual} accounts stored: no change.")
    else:
        print(f"{whose}: counter was {before}, {actual} accounts stored: repaired (now {actual}).")
    return 0
