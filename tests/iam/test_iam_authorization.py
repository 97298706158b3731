"""IamAuthorizer: decisions, AWS's AccessDenied messages, context keys, and speed."""

from __future__ import annotations

import json
import time

import pytest
from iam_harness import ACCOUNT, Env, allow, deny, trust

from auroral.errors import AccessDenied, AwsError


def test_no_policy_means_implicit_deny_with_aws_message(env: Env) -> None:
    bob = env.make_user("bob")
    with pytest.raises(AccessDenied) as err:
        env.call("ListUsers", {}, bob)
    assert err.value.status == 403 and err.value.code == "AccessDenied"
    assert err.value.message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: iam:ListUsers on resource: "
        f"arn:aws:iam::{ACCOUNT}:user/* because no identity-based policy allows the iam:ListUsers action")


def test_explicit_deny_wins_with_aws_message(env: Env) -> None:
    bob = env.make_user("bob", allow("iam:*"), deny("iam:DeleteUser"))
    env.call("CreateUser", {"UserName": "victim"}, bob)
    with pytest.raises(AccessDenied) as err:
        env.call("DeleteUser", {"UserName": "victim"}, bob)
    assert err.value.message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: iam:DeleteUser on resource: "
        f"arn:aws:iam::{ACCOUNT}:user/victim with an explicit deny in an identity-based policy")


def test_group_and_managed_policies_grant_and_changes_apply_immediately(env: Env) -> None:
    bob = env.make_user("bob")
    env.call("CreateGroup", {"GroupName": "readers"})
    env.call("AttachGroupPolicy", {"GroupName": "readers", "PolicyArn": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"})
    with pytest.raises(AccessDenied):
        env.call("ListRoles", {}, bob)
    env.call("AddUserToGroup", {"GroupName": "readers", "UserName": "bob"})
    env.call("ListRoles", {}, bob)  # the cache was invalidated by the change
    with pytest.raises(AccessDenied):
        env.call("CreateRole", {"RoleName": "x", "AssumeRolePolicyDocument": trust({"Service": "ec2.amazonaws.com"})}, bob)
    arn = env.call("CreatePolicy", {"PolicyName": "p", "PolicyDocument": json.dumps(allow("iam:CreateRole"))})["Policy"]["Arn"]
    env.call("AttachGroupPolicy", {"GroupName": "readers", "PolicyArn": arn})
    env.call("CreateRole", {"RoleName": "x", "AssumeRolePolicyDocument": trust({"Service": "ec2.amazonaws.com"})}, bob)
    # a new default version narrows it again
    env.call("CreatePolicyVersion", {"PolicyArn": arn, "PolicyDocument": json.dumps(allow("iam:GetRole")),
                                     "SetAsDefault": True})
    with pytest.raises(AccessDenied):
        env.call("CreateRole", {"RoleName": "y", "AssumeRolePolicyDocument": trust({"Service": "ec2.amazonaws.com"})}, bob)


def test_permissions_boundary_limits_and_names_itself(env: Env) -> None:
    bob = env.make_user("bob", allow("iam:*"))
    env.call("PutUserPermissionsBoundary", {"UserName": "bob",
                                            "PermissionsBoundary": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"})
    bob = env.principal_for(bob.access_key_id)
    env.call("ListUsers", {}, bob)
    with pytest.raises(AccessDenied) as err:
        env.call("CreateUser", {"UserName": "x"}, bob)
    assert err.value.message.endswith("because no permissions boundary allows the iam:CreateUser action")


def test_boundary_condition_on_create_user(env: Env) -> None:
    boundary = "arn:aws:iam::aws:policy/AmazonRDSReadOnlyAccess"
    admin = env.make_user("admin", allow(
        "iam:CreateUser", Condition={"StringEquals": {"iam:PermissionsBoundary": boundary}}))
    with pytest.raises(AccessDenied):
        env.call("CreateUser", {"UserName": "x"}, admin)
    env.call("CreateUser", {"UserName": "x", "PermissionsBoundary": boundary}, admin)


def test_policy_variables_tags_and_paths(env: Env) -> None:
    self_service = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:CreateAccessKey", "iam:ListAccessKeys"],
         "Resource": "arn:aws:iam::*:user/dev/${aws:username}"},
        {"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}}]}
    env.call("CreateUser", {"UserName": "dana", "Path": "/dev/", "Tags": [{"Key": "team", "Value": "db"}]})
    env.call("PutUserPolicy", {"UserName": "dana", "PolicyName": "p", "PolicyDocument": json.dumps(self_service)})
    key = env.call("CreateAccessKey", {"UserName": "dana"})["AccessKey"]["AccessKeyId"]
    dana = env.principal_for(key)
    env.call("ListAccessKeys", {}, dana)  # resource: her own ARN, with its path
    env.call("ListAccessKeys", {"UserName": "dana"}, dana)
    env.call("CreateUser", {"UserName": "erin", "Path": "/dev/"})
    with pytest.raises(AccessDenied):
        env.call("ListAccessKeys", {"UserName": "erin"}, dana)
    for name, team in (("dbrole", "db"), ("webrole", "web")):
        env.call("CreateRole", {"RoleName": name, "AssumeRolePolicyDocument": trust({"Service": "ec2.amazonaws.com"}),
                                "Tags": [{"Key": "team", "Value": team}]})
    env.call("GetRole", {"RoleName": "dbrole"}, dana)
    with pytest.raises(AccessDenied):
        env.call("GetRole", {"RoleName": "webrole"}, dana)


def test_operations_on_existing_entities_use_their_real_arn(env: Env) -> None:
    fence = deny("iam:*", [f"arn:aws:iam::{ACCOUNT}:user/admins/*", f"arn:aws:iam::{ACCOUNT}:role/admins/*"])
    helpdesk = env.make_user("helpdesk", allow("iam:*"), fence)
    env.call("CreateUser", {"UserName": "admin1", "Path": "/admins/"})
    env.call("CreateRole", {"RoleName": "ops", "Path": "/admins/", "AssumeRolePolicyDocument": trust(
        {"Service": "ec2.amazonaws.com"})})
    for op, params, arn in (
        ("CreateAccessKey", {"UserName": "ADMIN1"}, f"arn:aws:iam::{ACCOUNT}:user/admins/admin1"),
        ("AttachUserPolicy", {"UserName": "Admin1", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
         f"arn:aws:iam::{ACCOUNT}:user/admins/admin1"),
        ("UpdateAssumeRolePolicy", {"RoleName": "OPS", "PolicyDocument": trust({"AWS": helpdesk.arn})},
         f"arn:aws:iam::{ACCOUNT}:role/admins/ops"),
        ("UpdateUser", {"UserName": "helpdesk", "NewPath": "/admins/"}, f"arn:aws:iam::{ACCOUNT}:user/admins/helpdesk"),
    ):
        with pytest.raises(AccessDenied) as err:
            env.call(op, params, helpdesk)
        assert f"on resource: {arn} with an explicit deny" in err.value.message, op
    assert env.directory.access_keys == {k: v for k, v in env.directory.access_keys.items() if v.user == "helpdesk"}


def test_source_ip_and_policy_arn_conditions(env: Env) -> None:
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:AttachUserPolicy", "Resource": "*",
         "Condition": {"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"},
                       "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}
    ops = env.make_user("ops", doc)
    env.call("CreateUser", {"UserName": "t"})
    env.call("AttachUserPolicy", {"UserName": "t", "PolicyArn": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"}, ops)
    with pytest.raises(AccessDenied):
        env.call("AttachUserPolicy", {"UserName": "t", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, ops)
    with pytest.raises(AccessDenied):
        env.call("AttachUserPolicy", {"UserName": "t", "PolicyArn": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"}, ops,
                 source_ip="192.168.1.5")


def test_mfa_key_absent_for_long_term_keys(env: Env) -> None:
    # AWS: aws:MultiFactorAuthPresent is not in the context of requests signed with long-term keys,
    # so "Bool false" does not deny them while "BoolIfExists false" does.
    bool_deny = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}]}
    u1 = env.make_user("u1", bool_deny)
    env.call("ListUsers", {}, u1)
    if_exists = json.loads(json.dumps(bool_deny).replace('"Bool"', '"BoolIfExists"'))
    u2 = env.make_user("u2", if_exists)
    with pytest.raises(AccessDenied):
        env.call("ListUsers", {}, u2)
    keys = env.authorizer.request_context(env.ctx(u1))
    assert "aws:MultiFactorAuthPresent" not in keys
    assert keys["aws:username"] == "u1" and keys["aws:PrincipalType"] == "User"
    assert keys["aws:PrincipalArn"] == f"arn:aws:iam::{ACCOUNT}:user/u1" and keys["aws:PrincipalAccount"] == ACCOUNT
    assert keys["aws:SecureTransport"] == "true" and keys["aws:RequestedRegion"] == "us-east-1"
    assert keys["aws:CurrentTime"] == "2024-05-01T12:00:00Z" and keys["aws:EpochTime"] == "1714564800"


def test_root_is_allowed_everything(env: Env) -> None:
    env.authorizer.authorize(env.ctx(), "rds:DeleteDBCluster", ["arn:aws:rds:us-east-1:123456789012:cluster:c"])


def test_service_linked_role_permission(env: Env) -> None:
    doc = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole",
        "Resource": "arn:aws:iam::*:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS",
        "Condition": {"StringLike": {"iam:AWSServiceName": "rds.amazonaws.com"}}}]}
    u = env.make_user("u", doc)
    env.call("CreateServiceLinkedRole", {"AWSServiceName": "rds.amazonaws.com"}, u)
    with pytest.raises(AwsError):
        env.call("CreateServiceLinkedRole", {"AWSServiceName": "elasticloadbalancing.amazonaws.com"}, u)


def test_authorize_is_fast(env: Env) -> None:
    docs = [allow(f"rds:Describe{i}*", f"arn:aws:rds:*:{ACCOUNT}:cluster:c{i}") for i in range(10)]
    docs.append(allow("rds:CreateDBCluster", "*", Condition={"Bool": {"rds:ManageMasterUserPassword": "true"}}))
    u = env.make_user("fast", *docs)
    ctx = env.ctx(u)
    keys = {"rds:ManageMasterUserPassword": "true", "rds:DatabaseEngine": "aurora-postgresql"}
    resources = [f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:c1"]
    n = 5000
    start = time.perf_counter()
    for _ in range(n):
        env.authorizer.authorize(ctx, "rds:CreateDBCluster", resources, keys)
    rate = n / (time.perf_counter() - start)
    assert rate > 3000, f"{rate:.0f} authorize() calls/s"
    print(f"{rate:.0f} authorize() calls/s")
