"""Publish the dashboard to a deployed stack: ``frontend/`` into its bucket, a ``config.js`` written
from the stack, then a CloudFront invalidation.

    python -m tools.publish_dashboard [--stack NAME] [--region REGION] [--client-id ID]
    make publish [STACK=...] [REGION=...] [CLIENT_ID=...]      # make deploy runs it after sam deploy

The stack name and region default to what ``sam deploy --guided`` saved in ``samconfig.toml``.
From the stack: the outputs ``DashboardBucket``, ``DistributionId``, ``DashboardUrl`` and
``DashboardKindeClientId``, and the parameters ``KindeIssuerUrl``, ``KindeAudience`` and
``PlanLimits`` (the plan codes), so the page signs in with the Kinde domain the API trusts and
offers the plans the API enforces. A stack deployed with ``HostDashboard=false`` has nothing to
publish.

Cache headers, chosen so that a deploy is seen at once and a repeat visit costs little:
``index.html`` and ``config.js`` are ``no-cache`` (revalidated on every load: they name everything
else); a file whose path carries a version or a content hash (the vendored Kinde SDK file) never
changes under its name and is ``immutable`` for a year; the other files (``app.js``, ``api.js``,
``styles.css``) keep their names from one release to the next, so they get five minutes: a browser
may run the previous release's copy for at most that long after a deploy. Files are uploaded
long-lived first and ``index.html`` last, so the entry point never names a file not yet there;
files that left ``frontend/`` are then deleted from the bucket.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from local import ROOT
from local.static import FRONTEND_DIR, STATIC_TYPES

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

SAMCONFIG = ROOT / "samconfig.toml"
CONFIG_FILE = "config.js"
DEFAULT_PAGE_SIZE = 10

# The page's files are published with the types the local gateway serves them with (one table);
# other files are skipped.
CONTENT_TYPES = STATIC_TYPES
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT_LIVED = "public, max-age=300"
# A version (kinde-auth-pkce-js-4.5.1.esm.js, sdk@4.5.1/…) or a content hash (app.3f2a9c1d.js).
VERSIONED = re.compile(r"(^|[/@_.-])v?\d+\.\d+\.\d+([/@_.+-]|$)|[.-][0-9a-f]{8,}\.")


class PublishError(RuntimeError):
    """Nothing was published; the message says what to set."""


@dataclass(frozen=True)
class Dashboard:
    """Where the page goes and what its config.js says, as the stack knows it."""

    bucket: str
    distribution_id: str
    url: str
    kinde_domain: str
    client_id: str
    audience: str
    plans: tuple[str, ...]


def cache_control(key: str) -> str:
    if key.endswith(".html") or key == CONFIG_FILE:
        return NO_CACHE
    return IMMUTABLE if VERSIONED.search(key) else SHORT_LIVED


def content_type(key: str) -> str | None:
    return CONTENT_TYPES.get(Path(key).suffix)


def upload_order(keys: Iterable[str]) -> list[str]:
    """Long-lived files first, then the short-lived ones, config.js, and the HTML pages last."""
    rank = {IMMUTABLE: 0, SHORT_LIVED: 1}
    return sorted(keys, key=lambda key: (key.endswith(".html"), rank.get(cache_control(key), 2), key))


def render_config(dashboard: Dashboard, page_size: int = DEFAULT_PAGE_SIZE) -> str:
    """The page's config.js: its API on the same origin (CloudFront forwards the routes)."""
    config = {
        "apiBaseUrl": "",
        "kinde": {
            "domain": dashboard.kinde_domain,
            "clientId": dashboard.client_id,
            "redirectUri": dashboard.url,
            "logoutUri": dashboard.url,
            "audience": dashboard.audience,
        },
        "plans": list(dashboard.plans),
        "pageSize": page_size,
    }
    return (
        "// Written by `make publish` (tools/publish_dashboard.py) from the stack's outputs and\n"
        "// parameters; edits here are overwritten by the next publish.\n"
        f"export const config = {json.dumps(config, indent=2)};\n"
    )


def read_stack(cloudformation: CloudFormationClient, stack: str, client_id: str | None) -> Dashboard | None:
    """The stack's dashboard, or None when it was deployed without one (HostDashboard=false)."""
    found = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", []) if "OutputKey" in o}
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in found.get("Parameters", [])}
    if "DashboardBucket" not in outputs:
        return None
    client_id = client_id or outputs.get("DashboardKindeClientId", "")
    if not client_id:
        raise PublishError(
            "no Kinde client id: deploy with DashboardKindeClientId=<your Kinde SPA application's "
            "client id>, or run make publish CLIENT_ID=<id>"
        )
    try:
        limits = json.loads(params.get("PlanLimits", ""))
    except ValueError:
        limits = None
    if not isinstance(limits, dict) or not limits:
        raise PublishError("the stack's PlanLimits parameter is not a JSON object of plan codes")
    return Dashboard(
        bucket=outputs["DashboardBucket"],
        distribution_id=outputs["DistributionId"],
        url=outputs["DashboardUrl"],
        kinde_domain=params["KindeIssuerUrl"].rstrip("/"),
        client_id=client_id,
        audience=params.get("KindeAudience", ""),
        plans=tuple(limits),
    )


def page_files(frontend: Path) -> dict[str, Path]:
    """The files to upload by key: every file of a known type, dot-files and config.js left out."""
    files = {}
    for path in sorted(frontend.rglob("*")):
        key = path.relative_to(frontend).as_posix()
        if not path.is_file() or key == CONFIG_FILE or any(part.startswith(".") for part in key.split("/")):
            continue
        if content_type(key) is None:
            print(f"  skipped {key}: no content type for {path.suffix or 'a file without suffix'}")
            continue
        files[key] = path
    return files


def publish(
    s3: S3Client,
    cloudfront: CloudFrontClient,
    dashboard: Dashboard,
    frontend: Path = FRONTEND_DIR,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> str:
    """Upload the page and its config, delete what left it, invalidate; the invalidation's id."""
    bodies = {key: path.read_bytes() for key, path in page_files(frontend).items()}
    bodies[CONFIG_FILE] = render_config(dashboard, page_size).encode()
    for key in upload_order(bodies):
        s3.put_object(
            Bucket=dashboard.bucket,
            Key=key,
            Body=bodies[key],
            ContentType=content_type(key) or "application/octet-stream",
            CacheControl=cache_control(key),
        )
        print(f"  {key} ({cache_control(key)})")
    stale: list[ObjectIdentifierTypeDef] = [
        {"Key": item["Key"]}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=dashboard.bucket)
        for item in page.get("Contents", [])
        if item["Key"] not in bodies
    ]
    for start in range(0, len(stale), 1000):
        s3.delete_objects(Bucket=dashboard.bucket, Delete={"Objects": stale[start : start + 1000]})
    if stale:
        print(f"  deleted {len(stale)} file(s) no longer in frontend/")
    invalidation = cloudfront.create_invalidation(
        DistributionId=dashboard.distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]},
            "CallerReference": f"publish-dashboard-{time.time_ns()}",
        },
    )
    return invalidation["Invalidation"]["Id"]


def samconfig_default(name: str, path: Path = SAMCONFIG) -> str | None:
    """``stack_name``/``region`` as ``sam deploy --guided`` saved them, if it did."""
    if not path.is_file():
        return None
    default = tomllib.loads(path.read_text()).get("default", {})
    for section in ("deploy", "global"):
        value = default.get(section, {}).get("parameters", {}).get(name)
        if isinstance(value, str) and value:
            return value
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Publish frontend/ to a deployed Plan Guard stack.")
    parser.add_argument("--stack", help="stack name (default: samconfig.toml's stack_name)")
    parser.add_argument("--region", help="AWS region (default: samconfig.toml's, else the AWS config)")
    parser.add_argument(
        "--client-id", help="Kinde SPA client id (default: the DashboardKindeClientId output)"
    )
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE, help="accounts per page")
    parser.add_argument("--frontend", type=Path, default=FRONTEND_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    stack = args.stack or samconfig_default("stack_name")
    if not stack:
        print("no stack name: pass --stack (make publish STACK=...) or deploy with make deploy first")
        return 1
    session = boto3.Session(region_name=args.region or samconfig_default("region"))
    try:
        dashboard = read_stack(session.client("cloudformation"), stack, args.client_id)
        if dashboard is None:
            print(f"stack {stack} hosts no dashboard (HostDashboard=false): nothing to publish")
            return 0
        print(f"publishing {args.frontend} to s3://{dashboard.bucket}")
        invalidation = publish(
            session.client("s3"), session.client("cloudfront"), dashboard, args.frontend, args.page_size
        )
    except (PublishError, ClientError, BotoCoreError) as error:
        print(f"dashboard not published: {error}")
        return 1
    print(f"invalidation {invalidation} of /* on {dashboard.distribution_id}; the dashboard: {dashboard.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
