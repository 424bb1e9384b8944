"""The hosted dashboard in template.yaml: CloudFront forwards every API route and nothing else to
the HttpApi, and the policies moto cannot model (cache, origin request, response headers, origin
access) are what the design asks for. cfn-lint (`make build`) checks the property schemas."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from local.static import FRONTEND_DIR, STATIC_HEADERS
from local.template import Route, load_template, resolve_value

TEMPLATE = load_template()
RESOURCES = TEMPLATE.resources
DISTRIBUTION = RESOURCES["DashboardDistribution"]["Properties"]["DistributionConfig"]
BEHAVIOURS: list[dict[str, Any]] = DISTRIBUTION["CacheBehaviors"]
API_ORIGIN = "HttpApi"
PAGE_ORIGIN = "DashboardBucket"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
ALL_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
SAMPLE_VALUES = ("x", "01HZY5M3T6V9W2X4Y7Z8A1B2C3", "kp_alice", "a.b-c~d")
KINDE_DOMAIN = "https://example.kinde.com"
# Paths the page and the local stack use that are no API route: none may reach the HttpApi.
NOT_ROUTES = ["/", "/index.html", "/config.js", "/openapi.json", "/dev/token", "/dev/plan", "/dev/webhook"]
NOT_ROUTES += ["/" + p.relative_to(FRONTEND_DIR).as_posix() for p in FRONTEND_DIR.rglob("*") if p.is_file()]


def cloudfront_matches(pattern: str, path: str) -> bool:
    """CloudFront's path-pattern match: ``*`` any run of characters (``/`` included), ``?`` one
    character, case-sensitive, the leading ``/`` optional in the pattern, the whole path."""
    pattern = pattern if pattern.startswith("/") else "/" + pattern
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, path) is not None


def first_behaviour(behaviours: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """The behaviour CloudFront picks: the first listed whose pattern matches, else the default."""
    for behaviour in behaviours:
        if cloudfront_matches(behaviour["PathPattern"], path):
            return behaviour
    default: dict[str, Any] = DISTRIBUTION["DefaultCacheBehavior"]
    return default


def route_pattern(path: str) -> str:
    """A route's path as a CloudFront pattern: each path parameter becomes ``*``."""
    return re.sub(r"\{[^}]+\}", "*", path)


def coverage_problems(routes: list[Route], behaviours: list[dict[str, Any]]) -> list[str]:
    """Routes CloudFront would not forward to the API, and API behaviours that are no route."""
    problems = []
    for route in routes:
        for value in SAMPLE_VALUES:
            path = re.sub(r"\{[^}]+\}", value, route.path)
            chosen = first_behaviour(behaviours, path)
            if chosen["TargetOriginId"] != API_ORIGIN:
                problems.append(f"{route.route_key}: {path} goes to {chosen['TargetOriginId']}")
            elif route.method not in chosen["AllowedMethods"]:
                problems.append(f"{route.route_key}: {chosen['PathPattern']} does not allow {route.method}")
    patterns = {route_pattern(route.path) for route in routes}
    for behaviour in behaviours:
        if behaviour["TargetOriginId"] == API_ORIGIN and behaviour["PathPattern"] not in patterns:
            problems.append(f"{behaviour['PathPattern']} forwards to the API but is no route's path")
    for path in NOT_ROUTES:
        if first_behaviour(behaviours, path)["TargetOriginId"] == API_ORIGIN:
            problems.append(f"{path} is no route but goes to the API")
    return problems


def test_the_matcher_follows_cloudfront_path_patterns() -> None:
    assert cloudfront_matches("/accounts/*", "/accounts/abc")
    assert cloudfront_matches("/accounts/*", "/accounts/a/b")  # * crosses "/"
    assert cloudfront_matches("accounts/*", "/accounts/abc")  # the leading "/" is optional
    assert cloudfront_matches("/usage?", "/usage2")
    assert not cloudfront_matches("/usage?", "/usage")
    assert not cloudfront_matches("/accounts/*", "/accounts")
    assert not cloudfront_matches("/accounts/*", "/Accounts/abc")  # case-sensitive
    assert not cloudfront_matches("/usage", "/usage/x")


def test_every_route_reaches_the_api_and_nothing_else_does() -> None:
    routes = TEMPLATE.routes()
    assert len(routes) >= 10
    assert coverage_problems(routes, BEHAVIOURS) == []
    # one behaviour per route path pattern, no two alike
    patterns = [b["PathPattern"] for b in BEHAVIOURS]
    assert sorted(patterns) == sorted({route_pattern(route.path) for route in routes})


def _without(pattern: str) -> list[dict[str, Any]]:
    return [b for b in BEHAVIOURS if b["PathPattern"] != pattern]


def _with_first(pattern: str) -> list[dict[str, Any]]:
    return [{**copy.deepcopy(BEHAVIOURS[0]), "PathPattern": pattern}, *BEHAVIOURS]


@pytest.mark.parametrize(
    ("behaviours", "routes", "expected"),
    [
        (_without("/usage"), None, "GET /usage: /usage goes to DashboardBucket"),
        (_without("/accounts/*"), None, "DELETE /accounts/{id}: /accounts/x goes to DashboardBucket"),
        (_with_first("/*"), None, "/* forwards to the API but is no route's path"),
        (_with_first("/dev/*"), None, "/dev/token is no route but goes to the API"),
        (_with_first("*.js"), None, "/app.js is no route but goes to the API"),
        (
            [{**b, "PathPattern": "/Usage"} if b["PathPattern"] == "/usage" else b for b in BEHAVIOURS],
            None,
            "GET /usage: /usage goes to DashboardBucket",
        ),
        (
            [
                {**b, "AllowedMethods": ["GET", "HEAD"]} if b["PathPattern"] == "/accounts" else b
                for b in BEHAVIOURS
            ],
            None,
            "POST /accounts: /accounts does not allow POST",
        ),
        (
            BEHAVIOURS,
            [Route("GET", "/reports/{id}", "ReportsFunction")],
            "GET /reports/{id}: /reports/x goes",
        ),
    ],
    ids=[
        "route-dropped",
        "parameter-route-dropped",
        "catch-all",
        "dev-routes",
        "page-files",
        "wrong-case",
        "method-missing",
        "new-route-without-behaviour",
    ],
)
def test_the_route_check_can_fail(
    behaviours: list[dict[str, Any]], routes: list[Route] | None, expected: str
) -> None:
    problems = coverage_problems((routes or []) + TEMPLATE.routes(), behaviours)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_api_behaviours_forward_uncached_with_every_header_but_host() -> None:
    for behaviour in BEHAVIOURS:
        assert behaviour["TargetOriginId"] == API_ORIGIN
        assert behaviour["CachePolicyId"] == CACHING_DISABLED
        assert behaviour["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST
        assert set(behaviour["AllowedMethods"]) == ALL_METHODS
        assert behaviour["ViewerProtocolPolicy"] == "https-only"  # a redirected POST turns into a GET
        assert "ForwardedValues" not in behaviour  # the legacy settings would override the policies


def test_no_origin_request_policy_lists_authorization_or_host() -> None:
    for policy in TEMPLATE.of_type("AWS::CloudFront::OriginRequestPolicy").values():
        headers = policy["Properties"]["OriginRequestPolicyConfig"]["HeadersConfig"].get("Headers", [])
        assert {h.lower() for h in headers}.isdisjoint({"authorization", "host"})
    used = {b.get("OriginRequestPolicyId") for b in [*BEHAVIOURS, DISTRIBUTION["DefaultCacheBehavior"]]}
    assert used <= {ALL_VIEWER_EXCEPT_HOST, None}  # the managed AllViewer would forward Host


def test_the_api_origin_is_the_http_api_over_tls() -> None:
    origins = {origin["Id"]: origin for origin in DISTRIBUTION["Origins"]}
    assert set(origins) == {API_ORIGIN, PAGE_ORIGIN}
    api = origins[API_ORIGIN]
    assert api["DomainName"] == {"Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    assert "OriginPath" not in api  # the $default stage: routes sit at the root
    assert api["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert api["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]
    assert "CustomErrorResponses" not in DISTRIBUTION  # they would replace the API's error bodies


def test_the_page_comes_from_the_private_bucket_through_origin_access_control() -> None:
    page = next(origin for origin in DISTRIBUTION["Origins"] if origin["Id"] == PAGE_ORIGIN)
    assert page["DomainName"] == {"Fn::GetAtt": ["DashboardBucket", "RegionalDomainName"]}
    assert page["OriginAccessControlId"] == {"Fn::GetAtt": ["DashboardOriginAccessControl", "Id"]}
    assert page["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI
    oac = RESOURCES["DashboardOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"], oac["SigningProtocol"]) == (
        "s3",
        "always",
        "sigv4",
    )
    default = DISTRIBUTION["DefaultCacheBehavior"]
    assert default["TargetOriginId"] == PAGE_ORIGIN
    assert default["CachePolicyId"] == CACHING_OPTIMIZED
    assert set(default["AllowedMethods"]) == {"GET", "HEAD"}
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert DISTRIBUTION["DefaultRootObject"] == "index.html"


def test_the_bucket_is_private_encrypted_and_read_by_the_distribution_only() -> None:
    bucket = RESOURCES["DashboardBucket"]["Properties"]
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "AES256"  # SSE-KMS would need a key policy for CloudFront
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "WebsiteConfiguration" not in bucket and "AccessControl" not in bucket
    statements = RESOURCES["DashboardBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    deny, allow = (
        [s for s in statements if s["Effect"] == "Deny"],
        [s for s in statements if s["Effect"] == "Allow"],
    )
    assert deny == [
        {
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [{"Fn::GetAtt": ["DashboardBucket", "Arn"]}, {"Fn::Sub": "${DashboardBucket.Arn}/*"}],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    assert len(allow) == 1
    assert allow[0]["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow[0]["Action"] == "s3:GetObject"
    source = allow[0]["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source.endswith(":distribution/${DashboardDistribution}")


def _csp(policy: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in policy.split(";")) if d}


def test_the_csp_is_the_local_one_with_connect_src_narrowed_to_the_api_and_kinde() -> None:
    headers = RESOURCES["DashboardResponseHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    config = headers["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    assert config["Override"] is True
    hosted = _csp(resolve_value(config["ContentSecurityPolicy"], {"KindeIssuerUrl": KINDE_DOMAIN}, {}))
    assert hosted["connect-src"] == ["'self'", KINDE_DOMAIN]
    assert hosted["default-src"] == ["'self'"]
    assert hosted["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in source or source in ("*", "https:") for s in hosted.values() for source in s)
    # The browser tests run the page under the local gateway's CSP: the hosted one differs in
    # connect-src only, so what passed there is allowed here.
    local = _csp(dict(STATIC_HEADERS)["Content-Security-Policy"])
    assert {k: v for k, v in hosted.items() if k != "connect-src"} == {
        k: v for k, v in local.items() if k != "connect-src"
    }


def test_hsts_nosniff_and_no_framing_on_every_behaviour() -> None:
    props = RESOURCES["DashboardResponseHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    security = props["SecurityHeadersConfig"]
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert security["StrictTransportSecurity"]["Override"] is True
    assert security["ContentTypeOptions"] == {"Override": True}
    assert security["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    for behaviour in [*BEHAVIOURS, DISTRIBUTION["DefaultCacheBehavior"]]:
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "DashboardResponseHeadersPolicy"}


def _refers_to(value: Any, names: set[str]) -> bool:
    """Whether a template value refers (Ref, GetAtt, Sub) to one of ``names``."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and inner in names:
                return True
            if key == "Fn::GetAtt" and inner[0] in names:
                return True
            if key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                if any(re.search(rf"\$\{{{name}[.}}]", text) for name in names):
                    return True
            if _refers_to(inner, names):
                return True
    if isinstance(value, list):
        return any(_refers_to(item, names) for item in value)
    return False


def test_an_api_only_stack_stays_possible() -> None:
    assert TEMPLATE.doc["Conditions"]["ServeDashboard"] == {"Fn::Equals": [{"Ref": "HostDashboard"}, "true"]}
    hosting = {name for name, res in RESOURCES.items() if res.get("Condition") == "ServeDashboard"}
    assert hosting >= {
        "DashboardBucket",
        "DashboardBucketPolicy",
        "DashboardOriginAccessControl",
        "DashboardResponseHeadersPolicy",
        "DashboardDistribution",
    }
    # nothing outside the condition depends on it, and every output that names it carries it
    assert not any(_refers_to(res, hosting) for name, res in RESOURCES.items() if name not in hosting)
    outputs = TEMPLATE.doc["Outputs"]
    for name, output in outputs.items():
        if _refers_to(output, hosting):
            assert output.get("Condition") == "ServeDashboard", name
    assert {"DashboardUrl", "DashboardBucket", "DistributionId"} <= set(outputs)


def test_the_custom_domain_is_optional_and_its_certificate_from_us_east_1() -> None:
    params = TEMPLATE.doc["Parameters"]
    assert params["DashboardDomainName"]["Default"] == params["DashboardCertificateArn"]["Default"] == ""
    certificate = params["DashboardCertificateArn"]
    assert "us-east-1" in certificate["Description"]
    pattern = certificate["AllowedPattern"]
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(
        pattern, "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"
    )
    assert not re.fullmatch(pattern, "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d")
    assert DISTRIBUTION["Aliases"]["Fn::If"][0] == "DashboardHasDomain"
    with_domain, without = DISTRIBUTION["ViewerCertificate"]["Fn::If"][1:]
    assert with_domain["AcmCertificateArn"] == {"Ref": "DashboardCertificateArn"}
    assert with_domain["SslSupportMethod"] == "sni-only"
    assert without == {"CloudFrontDefaultCertificate": True}
    assert TEMPLATE.doc["Outputs"]["DashboardUrl"]["Value"]["Fn::If"][0] == "DashboardHasDomain"
