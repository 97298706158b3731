"""The EC2 authorization table and hooks: every implemented operation is authorized as ``ec2:<Op>``."""

from __future__ import annotations

import inspect

from auroral.api.actions import table
from auroral.api.protocol import service_model
from auroral.ec2 import Ec2Service
from auroral.ec2.actions import ACTIONS

from .conftest import ACCOUNT, Env, make_ctx

IMPLEMENTED = sorted(
    name for name in service_model("ec2").operation_names if inspect.isfunction(getattr(Ec2Service, name, None))
)


def test_every_implemented_operation_has_an_action_entry() -> None:
    assert len(IMPLEMENTED) == 43  # 42 + DescribeRegions
    assert sorted(ACTIONS) == IMPLEMENTED
    for op in IMPLEMENTED:
        assert table()[("ec2", op)].action == f"ec2:{op}"


def test_resource_templates(env: Env) -> None:
    arn = f"arn:aws:ec2:us-east-1:{ACCOUNT}:"

    def resolve(op: str, **params: object) -> list[str]:
        return ACTIONS[op].resolve(make_ctx(op, params), env.service, params)

    assert resolve("DeleteSecurityGroup", GroupId="sg-1") == [arn + "security-group/sg-1"]
    # EC2 IDs are case-sensitive: the handler looks them up exactly, and so does authorization.
    assert resolve("DeleteSecurityGroup", GroupId="SG-1") == [arn + "security-group/SG-1"]
    (vpc,) = [v for v in env.service.state.account(ACCOUNT).items.values() if getattr(v, "is_default", False)]
    # No VpcId: the group goes to the default VPC, which is what is authorized.
    assert resolve("CreateSecurityGroup") == [arn + "security-group/*", arn + f"vpc/{vpc.id}"]
    assert resolve("DescribeVpcs") == ["*"]


def test_hooks(env: Env) -> None:
    svc = env.service
    params = {"TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "team", "Value": "db"}]}]}
    keys = svc.authz_keys(make_ctx("CreateVpc", params), "CreateVpc", params)
    assert keys == {"aws:RequestTag/team": "db", "aws:TagKeys": ["team"]}
    delete = {"Resources": ["vpc-1"], "Tags": [{"Key": "a"}]}
    assert svc.authz_keys(make_ctx("DeleteTags", delete), "DeleteTags", delete) == {"aws:TagKeys": ["a"]}
    vpc = env.call("CreateVpc", CidrBlock="10.0.0.0/16", **params)["Vpc"]["VpcId"]
    tag_params = {"Resources": [vpc, "sg-2"], "Tags": [{"Key": "k", "Value": "v"}]}
    assert ACTIONS["CreateTags"].resolve(make_ctx("CreateTags", tag_params), svc, tag_params) == [
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/{vpc}", f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-2"]
    assert svc.resource_tags(ACCOUNT, f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/{vpc}") == {"team": "db"}
    by_name = {"GroupName": "default"}
    (arn,) = ACTIONS["DeleteSecurityGroup"].resolve(make_ctx("DeleteSecurityGroup", by_name), svc, by_name)
    assert arn.startswith(f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-")
