"""`make publish` against moto: the stack's outputs and parameters (a CloudFormation stack in
moto), the page in S3 with its content types and cache headers, the written config.js, stale
files removed, and a CloudFront invalidation."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from local.static import FRONTEND_DIR
from tools import publish_dashboard
from tools.publish_dashboard import (
    IMMUTABLE,
    NO_CACHE,
    SHORT_LIVED,
    Dashboard,
    cache_control,
    render_config,
    upload_order,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.type_defs import ParameterTypeDef
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

STACK = "plan-guard"
KINDE = "https://acme.kinde.com"
PLAN_LIMITS = '{"free":{"tracked_accounts":3},"team":{"tracked_accounts":20},"pro":{"tracked_accounts":5}}'
SDK_FILE = "kinde-auth-pkce-js-4.5.1.esm.js"

# A stand-in for the deployed stack: the outputs and parameters make publish reads, with the
# bucket created by the stack itself and the distribution (not in moto's CloudFormation) passed in.
FAKE_STACK = {
    "Parameters": {
        "KindeIssuerUrl": {"Type": "String"},
        "KindeAudience": {"Type": "String", "Default": ""},
        "PlanLimits": {"Type": "String"},
        "DistributionIdIn": {"Type": "String"},
        "ClientId": {"Type": "String", "Default": ""},
    },
    "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
    "Outputs": {
        "DashboardBucket": {"Value": {"Ref": "Bucket"}},
        "DistributionId": {"Value": {"Ref": "DistributionIdIn"}},
        "DashboardUrl": {"Value": "https://d111111abcdef8.cloudfront.net/"},
        "DashboardKindeClientId": {"Value": {"Ref": "ClientId"}},
        "ApiUrl": {"Value": "https://abc123.execute-api.us-east-1.amazonaws.com"},
    },
}


def parse_config(text: str) -> dict[str, Any]:
    """config.js is a JSON object literal after its comment lines."""
    code = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    prefix, suffix = "export const config = ", ";"
    assert code.startswith(prefix) and code.rstrip().endswith(suffix), code
    parsed: dict[str, Any] = json.loads(code[len(prefix) :].rstrip()[: -len(suffix)])
    return parsed


@pytest.fixture
def frontend(tmp_path: Path) -> Path:
    """A page like frontend/, with a versioned SDK file, a subfolder and files never to publish."""
    root = tmp_path / "frontend"
    shutil.copytree(FRONTEND_DIR, root)
    (root / SDK_FILE).write_text("export function createKindeClient() {}\n")
    (root / "img").mkdir()
    (root / "img" / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (root / ".DS_Store").write_bytes(b"\0")
    (root / "notes.txt").write_text("not part of the page")
    return root


@pytest.fixture
def deployed() -> Iterator[dict[str, str]]:
    """moto with the fake stack, its bucket holding a stale file, and a distribution."""
    with mock_aws():
        cloudfront = boto3.client("cloudfront")
        distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "test",
                "Comment": "",
                "Enabled": True,
                "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "example.s3.amazonaws.com"}]},
                "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "redirect-to-https"},
            }
        )["Distribution"]["Id"]
        cfn = boto3.client("cloudformation")
        cfn.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(FAKE_STACK),
            Parameters=[
                {"ParameterKey": "KindeIssuerUrl", "ParameterValue": KINDE + "/"},
                {"ParameterKey": "KindeAudience", "ParameterValue": "https://api.example.com"},
                {"ParameterKey": "PlanLimits", "ParameterValue": PLAN_LIMITS},
                {"ParameterKey": "DistributionIdIn", "ParameterValue": distribution},
                {"ParameterKey": "ClientId", "ParameterValue": "stack_client_id"},
            ],
        )
        outputs = {
            o["OutputKey"]: o["OutputValue"]
            for o in cfn.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
        }
        boto3.client("s3").put_object(
            Bucket=outputs["DashboardBucket"], Key="kinde-auth-pkce-js-4.4.0.esm.js", Body=b"old"
        )
        yield outputs


def objects(bucket: str) -> dict[str, GetObjectOutputTypeDef]:
    s3 = boto3.client("s3")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key) for key in keys}


def test_publish_uploads_the_page_with_types_cache_headers_and_config(
    deployed: dict[str, str], frontend: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        publish_dashboard.main(["--stack", STACK, "--region", "us-east-1", "--frontend", str(frontend)]) == 0
    )

    stored = objects(deployed["DashboardBucket"])
    page = {p.relative_to(frontend).as_posix() for p in frontend.rglob("*") if p.is_file()}
    # Files the gateway does not serve either (no content type) stay out; the stale 4.4.0 SDK file is gone.
    assert set(stored) == page - {".DS_Store", "notes.txt", "vendor/SHA256SUMS"}
    expected = {
        "index.html": ("text/html; charset=utf-8", NO_CACHE),
        "config.js": ("text/javascript; charset=utf-8", NO_CACHE),
        "app.js": ("text/javascript; charset=utf-8", SHORT_LIVED),
        "styles.css": ("text/css; charset=utf-8", SHORT_LIVED),
        SDK_FILE: ("text/javascript; charset=utf-8", IMMUTABLE),
        "img/logo.svg": ("image/svg+xml", SHORT_LIVED),
    }
    for key, (content_type, cache) in expected.items():
        assert (stored[key]["ContentType"], stored[key]["CacheControl"]) == (content_type, cache), key
    assert stored["app.js"]["Body"].read() == (frontend / "app.js").read_bytes()
    assert stored[SDK_FILE]["Body"].read() == (frontend / SDK_FILE).read_bytes()

    config = parse_config(stored["config.js"]["Body"].read().decode())
    assert config == {
        "apiBaseUrl": "",
        "kinde": {
            "domain": KINDE,
            "clientId": "stack_client_id",
            "redirectUri": "https://d111111abcdef8.cloudfront.net/",
            "logoutUri": "https://d111111abcdef8.cloudfront.net/",
            "audience": "https://api.example.com",
        },
        "plans": ["free", "team", "pro"],
        "pageSize": 10,
    }

    invalidations = boto3.client("cloudfront").list_invalidations(DistributionId=deployed["DistributionId"])
    [summary] = invalidations["InvalidationList"]["Items"]
    batch = boto3.client("cloudfront").get_invalidation(
        DistributionId=deployed["DistributionId"], Id=summary["Id"]
    )
    assert batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == ["/*"]
    out = capsys.readouterr().out
    assert "skipped notes.txt" in out and summary["Id"] in out


def test_a_client_id_on_the_command_line_wins(deployed: dict[str, str], frontend: Path) -> None:
    argv = ["--stack", STACK, "--frontend", str(frontend), "--client-id", "cli_client", "--page-size", "25"]
    assert publish_dashboard.main(argv) == 0
    body = objects(deployed["DashboardBucket"])["config.js"]["Body"].read().decode()
    config = parse_config(body)
    assert (config["kinde"]["clientId"], config["pageSize"]) == ("cli_client", 25)


def test_without_a_client_id_nothing_is_published(
    deployed: dict[str, str], frontend: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parameters: list[ParameterTypeDef] = [
        {"ParameterKey": key, "UsePreviousValue": True}
        for key in ("KindeIssuerUrl", "KindeAudience", "PlanLimits", "DistributionIdIn")
    ]
    parameters.append({"ParameterKey": "ClientId", "ParameterValue": ""})
    boto3.client("cloudformation").update_stack(
        StackName=STACK, TemplateBody=json.dumps(FAKE_STACK), Parameters=parameters
    )
    assert publish_dashboard.main(["--stack", STACK, "--frontend", str(frontend)]) == 1
    assert "DashboardKindeClientId" in capsys.readouterr().out
    assert set(objects(deployed["DashboardBucket"])) == {"kinde-auth-pkce-js-4.4.0.esm.js"}
    invalidations = boto3.client("cloudfront").list_invalidations(DistributionId=deployed["DistributionId"])
    assert invalidations["InvalidationList"]["Quantity"] == 0


@pytest.mark.parametrize("limits", ["", "[]", '"free"', "{}", "{not json"])
def test_plan_limits_that_name_no_plans_are_refused(limits: str) -> None:
    stack = {
        "Stacks": [
            {
                "Outputs": [
                    {"OutputKey": key, "OutputValue": "x"}
                    for key in ("DashboardBucket", "DistributionId", "DashboardUrl", "DashboardKindeClientId")
                ],
                "Parameters": [
                    {"ParameterKey": "KindeIssuerUrl", "ParameterValue": KINDE},
                    {"ParameterKey": "PlanLimits", "ParameterValue": limits},
                ],
            }
        ]
    }

    class Fake:
        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            return stack

    with pytest.raises(publish_dashboard.PublishError, match="PlanLimits"):
        publish_dashboard.read_stack(Fake(), STACK, None)  # type: ignore[arg-type]


def test_a_missing_stack_is_reported(deployed: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert publish_dashboard.main(["--stack", "no-such-stack"]) == 1
    assert "dashboard not published" in capsys.readouterr().out


def test_an_api_only_stack_has_nothing_to_publish(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        boto3.client("cloudformation").create_stack(
            StackName="api-only",
            TemplateBody=json.dumps(
                {
                    "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
                    "Outputs": {"ApiUrl": {"Value": "https://x"}},
                }
            ),
        )
        assert publish_dashboard.main(["--stack", "api-only"]) == 0
    assert "HostDashboard=false" in capsys.readouterr().out


def test_the_stack_name_and_region_default_to_samconfig(tmp_path: Path) -> None:
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        'version = 0.1\n[default.deploy.parameters]\nstack_name = "my-guard"\nregion = "eu-west-1"\n'
    )
    assert publish_dashboard.samconfig_default("stack_name", samconfig) == "my-guard"
    assert publish_dashboard.samconfig_default("region", samconfig) == "eu-west-1"
    assert publish_dashboard.samconfig_default("stack_name", tmp_path / "missing.toml") is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("index.html", NO_CACHE),
        ("help/index.html", NO_CACHE),
        ("config.js", NO_CACHE),
        (SDK_FILE, IMMUTABLE),
        ("vendor/kinde-auth-pkce-js@4.5.1/index.js", IMMUTABLE),
        ("app.3f2a9c1d.js", IMMUTABLE),
        ("app.js", SHORT_LIVED),
        ("api.js", SHORT_LIVED),
        ("styles.css", SHORT_LIVED),
        ("kinde-auth-pkce-js.esm.js", SHORT_LIVED),  # no version in the name: it may change under it
    ],
)
def test_cache_headers(key: str, expected: str) -> None:
    assert cache_control(key) == expected


def test_index_html_is_uploaded_last_and_long_lived_files_first() -> None:
    order = upload_order(["index.html", "config.js", "app.js", SDK_FILE, "styles.css"])
    assert order == [SDK_FILE, "app.js", "styles.css", "config.js", "index.html"]


def test_every_file_of_the_page_has_the_type_the_local_gateway_serves() -> None:
    assert set(publish_dashboard.page_files(FRONTEND_DIR)) == {
        p.relative_to(FRONTEND_DIR).as_posix() for p in FRONTEND_DIR.rglob("*") if p.is_file()
    } - {"config.js", "vendor/SHA256SUMS"}  # the vendored SDK's checksum record is not part of the page


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_config_js_is_a_module_the_browser_can_import(tmp_path: Path) -> None:
    dashboard = Dashboard(
        bucket="b",
        distribution_id="E1",
        url="https://dashboard.example.com/",
        kinde_domain="https://auth.example.com",
        client_id="abc",
        audience="",
        plans=("free", 'pro "quoted"', "</script>"),
    )
    module = tmp_path / "config.mjs"
    module.write_text(render_config(dashboard))
    script = f"import({json.dumps(module.as_uri())}).then((m) => console.log(JSON.stringify(m.config)))"
    result = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(result.stdout) == parse_config(module.read_text())
    assert json.loads(result.stdout)["plans"] == ["free", 'pro "quoted"', "</script>"]
