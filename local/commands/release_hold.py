"""``make release-hold``: end one user's downgrade hold, for support.

A hold normally ends by itself: at its end once Kinde shows the change applied, or at the longest
a downgrade may stay pending (``DOWNGRADE_HOLD_MAX_SECONDS``). A downgrade Kinde will never apply
(the customer changed their mind with support, a cancelled subscription) keeps the user held until
then; this ends it at once. The user's adds are then bound by their Kinde plan alone.
"""

from __future__ import annotations

import argparse

from planguard.dynamodb import dynamodb_client
from planguard.usage_counter import UsageCounter

from local.commands.common import local_stack
from local.config import PLAN_CHECK_FUNCTION, LocalConfig, resource_names
from local.dynamodb import local_client


def release_hold(config: LocalConfig, options: argparse.Namespace) -> int:
    """On the local stack's data, or with ``--table`` on a deployed table (default AWS credentials)."""
    user = options.user
    if options.table:
        released = UsageCounter(dynamodb_client(), options.table).release_hold(user)
    else:
        env = config.template.resolve_environment(PLAN_CHECK_FUNCTION, {}, resource_names(config.template))
        with local_stack(config) as (endpoints, _):
            released = UsageCounter(local_client(endpoints.dynamodb), env["TABLE_NAME"]).release_hold(user)
    if released is None:
        print(f"{user}: no hold to release.")
    else:
        print(f"{user}: hold at {released} released; adds are bound by the Kinde plan alone.")
    return 0
