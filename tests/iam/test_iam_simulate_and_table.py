"""The policy simulator, and the authorization table against botocore's IAM/STS models."""

from __future__ import annotations

import json

import botocore.session
import pytest
from iam_harness import ACCOUNT, Env, allow, deny

from auroral.errors import AwsError
from auroral.iam.actions import ACTIONS as IAM_ACTIONS
from auroral.iam.service import IamService
from auroral.sts.actions import ACTIONS as STS_ACTIONS
from auroral.sts.service import StsService


def test_simulate_principal_policy(env: Env) -> None:
    env.make_user("sim", allow("rds:Describe*"), deny("rds:DescribeDBClusters", f"arn:aws:rds:*:{ACCOUNT}:cluster:secret"))
    arn = f"arn:aws:iam::{ACCOUNT}:user/sim"
    out = env.call("SimulatePrincipalPolicy", {
        "PolicySourceArn": arn, "ActionNames": ["rds:DescribeDBClusters", "rds:CreateDBCluster"],
        "ResourceArns": [f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:app", f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:secret"]})
    decisions = [(r["EvalActionName"], r["EvalResourceName"].rsplit(":", 1)[-1], r["EvalDecision"])
                 for r in out["EvaluationResults"]]
    assert decisions == [("rds:DescribeDBClusters", "app", "allowed"), ("rds:DescribeDBClusters", "secret", "explicitDeny"),
                         ("rds:CreateDBCluster", "app", "implicitDeny"), ("rds:CreateDBCluster", "secret", "implicitDeny")]
    assert out["EvaluationResults"][0]["MatchedStatements"] == [{"SourcePolicyId": "p0", "SourcePolicyType": "user"}]
    assert out["EvaluationResults"][1]["MatchedStatements"][0]["SourcePolicyId"] == "p1"
    page = env.call("SimulatePrincipalPolicy", {"PolicySourceArn": arn, "ActionNames": ["rds:A", "rds:B", "rds:C"],
                                                "MaxItems": 2})
    assert len(page["EvaluationResults"]) == 2 and page["IsTruncated"]
    with pytest.raises(AwsError) as err:
        env.call("SimulatePrincipalPolicy", {"PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:user/ghost",
                                             "ActionNames": ["rds:A"]})
    assert err.value.code == "NoSuchEntity"


def test_simulate_custom_policy_with_context_and_boundary(env: Env) -> None:
    policy = json.dumps(allow("rds:CreateDBCluster", Condition={"Bool": {"rds:ManageMasterUserPassword": "true"}}))
    base = {"PolicyInputList": [policy], "ActionNames": ["rds:CreateDBCluster"]}
    out = env.call("SimulateCustomPolicy", base)
    assert out["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"
    ctx = [{"ContextKeyName": "rds:ManageMasterUserPassword", "ContextKeyValues": ["true"], "ContextKeyType": "boolean"}]
    out = env.call("SimulateCustomPolicy", {**base, "ContextEntries": ctx})
    result = out["EvaluationResults"][0]
    assert result["EvalDecision"] == "allowed"
    assert result["MatchedStatements"] == [{"SourcePolicyId": "PolicyInputList.1", "SourcePolicyType": "none"}]
    out = env.call("SimulateCustomPolicy", {**base, "ContextEntries": ctx,
                                            "PermissionsBoundaryPolicyInputList": [json.dumps(allow("rds:Describe*"))]})
    result = out["EvaluationResults"][0]
    assert result["EvalDecision"] == "implicitDeny"
    assert result["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}
    with pytest.raises(AwsError) as err:
        env.call("SimulateCustomPolicy", {**base, "PolicyInputList": ["{nope"]})
    assert err.value.code == "InvalidInput"


def _operations(service: str) -> set[str]:
    return set(botocore.session.get_session().get_service_model(service).operation_names)


@pytest.mark.parametrize(("service", "provider", "actions"), [
    ("iam", IamService, IAM_ACTIONS), ("sts", StsService, STS_ACTIONS)])
def test_every_operation_has_an_action_and_exists_in_botocore(service: str, provider: type, actions: dict[str, object]) -> None:
    implemented = {n for n in dir(provider) if n[:1].isupper()}
    assert implemented == set(actions), implemented ^ set(actions)
    assert set(actions) <= _operations(service)


def test_action_names_match_operations() -> None:
    for op, spec in {**IAM_ACTIONS, **STS_ACTIONS}.items():
        assert spec.action.split(":", 1)[1] == op
