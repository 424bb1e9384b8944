"""``make reconcile``: recount a user's accounts and repair the usage counter."""

from __future__ import annotations

import argparse

from planguard.dynamodb import dynamodb_client
from planguard.usage_counter import UsageCounter

from local.commands.common import local_stack
from local.config import PLAN_CHECK_FUNCTION, LocalConfig, resource_names
from local.dynamodb import local_client


def reconcile(config: LocalConfig, options: argparse.Namespace) -> int:
    """On the local stack's data, or with ``--table`` on a deployed table (default AWS credentials)."""
    user = options.user
    if options.table:
        before, actual = UsageCounter(dynamodb_client(), options.table).reconcile(user)
    else:
        env = config.template.resolve_environment(PLAN_CHECK_FUNCTION, {}, resource_names(config.template))
        with local_stack(config) as (endpoints, _):
            before, actual = UsageCounter(local_client(endpoints.dynamodb), env["TABLE_NAME"]).reconcile(user)
    if before == actual:
        print(f"{user}: counter {before}, {actual} accounts stored: no change.")
    else:
        print(f"{user}: counter was {before}, {actual} accounts stored: repaired (now {actual}).")
    return 0
