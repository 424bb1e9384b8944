"""The local stack's commands, behind make dev, invoke, token, plan, reconcile, release-hold and webhook.

Every command but ``dev`` works against the running ``make dev``, or else starts the same stack
briefly over the same ``.local/`` files. Results go to stdout (``TOKEN=$(make token)`` works);
what is said to humans goes to stderr.
"""

from __future__ import annotations

import argparse
import sys

from planguard.errors import ApiError

from local.commands.common import say
from local.commands.dev import dev
from local.commands.invoke import invoke
from local.commands.kinde import plan, token, webhook
from local.commands.reconcile import reconcile
from local.commands.release_hold import release_hold
from local.commands.report_usage import report_usage
from local.config import DEV_USER, LocalConfig, StartupError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.cli", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dev", help="run the whole system locally on PORT (default 3000)").set_defaults(
        run=dev
    )
    invoke_parser = commands.add_parser("invoke", help="run one function with one event on the local data")
    invoke_parser.add_argument("function", nargs="?", metavar="FUNCTION")
    invoke_parser.add_argument("event", metavar="EVENT")
    token_parser = commands.add_parser("token", help="print a dev access token (and set the user's plan)")
    token_parser.add_argument("--plan")
    token_parser.add_argument(
        "--permissions", help="with --org: the member's permissions there, comma-separated"
    )
    plan_parser = commands.add_parser(
        "plan", help="request a plan change as Kinde would (runs the plan check)"
    )
    plan_parser.add_argument("--plan", required=True)
    plan_parser.add_argument(
        "--apply-after", type=float, default=0, help="apply an allowed change after S seconds"
    )
    plan_parser.add_argument(
        "--fails", action="store_true", help="the change's payment fails: allowed, but never applied"
    )
    reconcile_parser = commands.add_parser(
        "reconcile", help="recount a user's accounts and repair the counter"
    )
    reconcile_parser.add_argument("--table", help="a deployed table (stack output AccountsTableName)")
    release_parser = commands.add_parser("release-hold", help="end a user's downgrade hold (support)")
    release_parser.add_argument("--table", help="a deployed table (stack output AccountsTableName)")
    webhook_parser = commands.add_parser("webhook", help="send a signed Kinde webhook to the local API")
    webhook_parser.add_argument("--type", default="user.deleted")
    webhook_parser.add_argument("--redeliver", metavar="WEBHOOK_ID", help="send an earlier webhook again")
    webhook_parser.add_argument(
        "--new-id", action="store_true", help="with --redeliver: under a new webhook-id, as a replayer would"
    )
    webhook_parser.add_argument(
        "--age",
        type=float,
        default=0,
        metavar="SECONDS",
        help="sign the event as this old (negative: in the future), to try stale and future events",
    )
    commands.add_parser(
        "report-usage", help="send every customer's current count to Kinde again (as the schedule does)"
    ).set_defaults(run=report_usage)
    for sub, run in (
        (invoke_parser, invoke),
        (token_parser, token),
        (plan_parser, plan),
        (reconcile_parser, reconcile),
        (release_parser, release_hold),
        (webhook_parser, webhook),
    ):
        sub.add_argument("--user", default=DEV_USER, help=f"default {DEV_USER}")
        sub.set_defaults(run=run)
    for sub, help_text in (
        (token_parser, "sign the user in to this organization (its plan with --plan)"),
        (plan_parser, "change this organization's plan (--user: the member selecting it)"),
        (reconcile_parser, "recount this organization's accounts instead of a user's"),
        (webhook_parser, "the organization the event is about (e.g. --type organization.deleted)"),
    ):
        sub.add_argument("--org", help=help_text)
    options = parser.parse_args(argv)
    try:
        return int(options.run(LocalConfig.from_env(), options))
    except StartupError as exc:
        say(f"error: {exc}")
        return 1
    except ApiError as exc:  # the repository's storage errors (e.g. DynamoDB unreachable)
        say(f"error: {exc.code}: {exc.message}")
        return 1
    except OSError as exc:  # e.g. the running make dev's stand-in stopped answering
        say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
