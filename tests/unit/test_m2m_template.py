"""The Management API's M2M client in the template: optional, its secret only in SSM, readable by
exactly that one parameter, and nothing at all when no client is configured."""

from __future__ import annotations

from local.template import load_template

TEMPLATE = load_template()
PARAMETERS = TEMPLATE.doc["Parameters"]
GLOBAL_ENV = TEMPLATE.doc["Globals"]["Function"]["Environment"]["Variables"]
POLICY = TEMPLATE.resources["KindeM2MSecretReadPolicy"]


def test_no_m2m_client_is_configured_by_default() -> None:
    defaults = TEMPLATE.parameter_defaults()
    assert (defaults["KindeM2MClientId"], defaults["KindeM2MClientSecretParameterName"]) == ("", "")
    assert (defaults["KindeManagementUrl"], defaults["KindeManagementAudience"]) == ("", "")
    assert defaults["KindeFeatureCode"] == "tracked_accounts"
    assert TEMPLATE._condition("HasKindeM2MClient", defaults) is False
    assert TEMPLATE._condition("HasKindeM2MClient", {**defaults, "KindeM2MClientId": "abc"}) is True


def test_the_functions_get_the_settings_but_never_a_secret() -> None:
    assert GLOBAL_ENV["KINDE_M2M_CLIENT_ID"] == {"Ref": "KindeM2MClientId"}
    assert GLOBAL_ENV["KINDE_M2M_CLIENT_SECRET_PARAM"] == {"Ref": "KindeM2MClientSecretParameterName"}
    assert GLOBAL_ENV["KINDE_MANAGEMENT_URL"] == {"Ref": "KindeManagementUrl"}
    assert GLOBAL_ENV["KINDE_MANAGEMENT_AUDIENCE"] == {"Ref": "KindeManagementAudience"}
    assert GLOBAL_ENV["KINDE_FEATURE_CODE"] == {"Ref": "KindeFeatureCode"}
    every_env = [GLOBAL_ENV, *(spec.environment for spec in TEMPLATE.functions().values())]
    assert not any("KINDE_M2M_CLIENT_SECRET" in env for env in every_env)
    assert not any("Secret" in name and "ParameterName" not in name for name in PARAMETERS)


def test_the_secret_is_readable_only_with_a_client_and_only_that_parameter() -> None:
    assert POLICY["Condition"] == "HasKindeM2MClient"
    [statement] = POLICY["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == ["ssm:GetParameter"]
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
        "${KindeM2MClientSecretParameterName}"
    }
    functions = set(TEMPLATE.of_type("AWS::Serverless::Function"))
    roles = [role["Ref"] for role in POLICY["Properties"]["Roles"]]
    assert roles and all(role.removesuffix("Role") in functions for role in roles)
