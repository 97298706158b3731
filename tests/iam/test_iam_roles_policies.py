"""Roles, service-linked roles, managed policies and versions, inline policies and attachments."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest
from iam_harness import ACCOUNT, Env, allow, trust

from auroral.errors import AwsError

DOC = json.dumps(allow("rds:Describe*"))


def test_role_lifecycle(env: Env) -> None:
    doc = trust({"Service": "ec2.amazonaws.com"})
    role = env.call("CreateRole", {"RoleName": "app", "AssumeRolePolicyDocument": doc, "Description": "d",
                                   "MaxSessionDuration": 7200, "Tags": [{"Key": "env", "Value": "test"}]})["Role"]
    assert role["RoleId"].startswith("AROA") and role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/app"
    assert json.loads(unquote(role["AssumeRolePolicyDocument"])) == json.loads(doc)  # URL-encoded like AWS
    got = env.call("GetRole", {"RoleName": "app"})["Role"]
    assert got["MaxSessionDuration"] == 7200 and got["Tags"] == [{"Key": "env", "Value": "test"}]
    assert got["RoleLastUsed"] == {}
    env.call("UpdateRole", {"RoleName": "app", "MaxSessionDuration": 43200, "Description": "new"})
    assert env.call("GetRole", {"RoleName": "app"})["Role"]["Description"] == "new"
    with pytest.raises(AwsError) as err:
        env.call("UpdateRole", {"RoleName": "app", "MaxSessionDuration": 50000})
    assert err.value.code == "ValidationError"
    new_trust = trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    env.call("UpdateAssumeRolePolicy", {"RoleName": "app", "PolicyDocument": new_trust})
    assert unquote(env.call("GetRole", {"RoleName": "app"})["Role"]["AssumeRolePolicyDocument"]) == new_trust
    env.call("TagRole", {"RoleName": "app", "Tags": [{"Key": "x", "Value": "y"}]})
    env.call("UntagRole", {"RoleName": "app", "TagKeys": ["env"]})
    assert env.call("ListRoleTags", {"RoleName": "app"})["Tags"] == [{"Key": "x", "Value": "y"}]
    assert [r["RoleName"] for r in env.call("ListRoles")["Roles"]] == ["app"]
    with pytest.raises(AwsError) as err:
        env.call("CreateRole", {"RoleName": "APP", "AssumeRolePolicyDocument": doc})
    assert (err.value.code, err.value.message) == ("EntityAlreadyExists", "Role with name APP already exists.")
    env.call("PutRolePolicy", {"RoleName": "app", "PolicyName": "inline", "PolicyDocument": DOC})
    with pytest.raises(AwsError) as err:
        env.call("DeleteRole", {"RoleName": "app"})
    assert err.value.message == "Cannot delete entity, must delete policies first."
    env.call("DeleteRolePolicy", {"RoleName": "app", "PolicyName": "inline"})
    env.call("DeleteRole", {"RoleName": "app"})
    with pytest.raises(AwsError) as err:
        env.call("GetRole", {"RoleName": "app"})
    assert err.value.message == "The role with name app cannot be found."


def test_trust_policy_validation(env: Env) -> None:
    with pytest.raises(AwsError) as err:
        env.call("CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": "{not json"})
    assert err.value.code == "MalformedPolicyDocument"
    missing = f"arn:aws:iam::{ACCOUNT}:user/ghost"
    with pytest.raises(AwsError) as err:
        env.call("CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": trust({"AWS": missing})})
    assert (err.value.code, err.value.message) == ("MalformedPolicyDocument",
                                                   f'Invalid principal in policy: "AWS":"{missing}"')


def test_service_linked_role(env: Env) -> None:
    role = env.call("CreateServiceLinkedRole", {"AWSServiceName": "rds.amazonaws.com"})["Role"]
    assert role["RoleName"] == "AWSServiceRoleForRDS"
    assert role["Path"] == "/aws-service-role/rds.amazonaws.com/"
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS"
    doc = json.loads(unquote(role["AssumeRolePolicyDocument"]))
    assert doc["Statement"][0]["Principal"] == {"Service": ["rds.amazonaws.com"]}
    attached = env.call("ListAttachedRolePolicies", {"RoleName": "AWSServiceRoleForRDS"})["AttachedPolicies"]
    assert attached == [{"PolicyName": "AmazonRDSServiceRolePolicy",
                         "PolicyArn": "arn:aws:iam::aws:policy/aws-service-role/AmazonRDSServiceRolePolicy"}]
    assert env.directory.service_linked_role_exists("rds.amazonaws.com")
    with pytest.raises(AwsError) as err:
        env.call("CreateServiceLinkedRole", {"AWSServiceName": "rds.amazonaws.com"})
    assert err.value.code == "InvalidInput"
    assert err.value.message == ("Service role name AWSServiceRoleForRDS has been taken in this account, "
                                 "please try a different suffix.")
    for op, params in [("DeleteRole", {}), ("UpdateAssumeRolePolicy", {"PolicyDocument": trust({"Service": "x"})}),
                       ("DetachRolePolicy", {"PolicyArn": attached[0]["PolicyArn"]})]:
        with pytest.raises(AwsError) as err:
            env.call(op, {"RoleName": "AWSServiceRoleForRDS", **params})
        assert err.value.code == "UnmodifiableEntity"
        assert err.value.message == ("Cannot perform the operation on the protected role 'AWSServiceRoleForRDS' "
                                     "- this role is only modifiable by AWS")
    # RDS refuses while clusters exist
    clusters = ["c1"]
    env.directory.register_slr_deletion_check(
        "rds.amazonaws.com", lambda service: "clusters exist" if clusters else None)
    task = env.call("DeleteServiceLinkedRole", {"RoleName": "AWSServiceRoleForRDS"})["DeletionTaskId"]
    status = env.call("GetServiceLinkedRoleDeletionStatus", {"DeletionTaskId": task})
    assert status["Status"] == "FAILED" and status["Reason"]["Reason"] == "clusters exist"
    assert env.directory.get_role("AWSServiceRoleForRDS") is not None
    clusters.clear()
    task = env.call("DeleteServiceLinkedRole", {"RoleName": "AWSServiceRoleForRDS"})["DeletionTaskId"]
    assert task.startswith("task/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS/")
    assert env.call("GetServiceLinkedRoleDeletionStatus", {"DeletionTaskId": task})["Status"] == "SUCCEEDED"
    assert not env.directory.service_linked_role_exists("rds.amazonaws.com")


def test_service_role_policy_not_attachable_to_customer_roles(env: Env) -> None:
    env.call("CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": trust({"Service": "ec2.amazonaws.com"})})
    with pytest.raises(AwsError) as err:
        env.call("AttachRolePolicy", {"RoleName": "r", "PolicyArn":
                                      "arn:aws:iam::aws:policy/aws-service-role/AmazonRDSServiceRolePolicy"})
    assert err.value.code == "PolicyNotAttachable"


def test_managed_policy_versions(env: Env) -> None:
    policy = env.call("CreatePolicy", {"PolicyName": "rds-read", "Path": "/team/", "PolicyDocument": DOC,
                                       "Description": "read", "Tags": [{"Key": "k", "Value": "v"}]})["Policy"]
    arn = policy["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy/team/rds-read"
    assert policy["DefaultVersionId"] == "v1" and policy["AttachmentCount"] == 0 and policy["PolicyId"].startswith("ANPA")
    with pytest.raises(AwsError) as err:
        env.call("CreatePolicy", {"PolicyName": "rds-read", "PolicyDocument": DOC})
    assert err.value.message == "A policy called rds-read already exists. Duplicate names are not allowed."
    for _ in range(4):
        env.call("CreatePolicyVersion", {"PolicyArn": arn, "PolicyDocument": DOC})
    with pytest.raises(AwsError) as err:
        env.call("CreatePolicyVersion", {"PolicyArn": arn, "PolicyDocument": DOC})
    assert (err.value.code, err.value.status, err.value.message) == (
        "LimitExceeded", 409, "A managed policy can have up to 5 versions. Before you create a new version, "
        "you must delete an existing version.")
    versions = env.call("ListPolicyVersions", {"PolicyArn": arn})["Versions"]
    assert [v["VersionId"] for v in versions] == ["v5", "v4", "v3", "v2", "v1"]
    assert [v["IsDefaultVersion"] for v in versions] == [False, False, False, False, True]
    with pytest.raises(AwsError) as err:
        env.call("DeletePolicyVersion", {"PolicyArn": arn, "VersionId": "v1"})
    assert (err.value.code, err.value.message) == ("DeleteConflict", "Cannot delete the default version of this policy.")
    env.call("SetDefaultPolicyVersion", {"PolicyArn": arn, "VersionId": "v3"})
    assert env.call("GetPolicy", {"PolicyArn": arn})["Policy"]["DefaultVersionId"] == "v3"
    env.call("DeletePolicyVersion", {"PolicyArn": arn, "VersionId": "v1"})
    new = env.call("CreatePolicyVersion", {"PolicyArn": arn, "PolicyDocument": DOC, "SetAsDefault": True})
    assert new["PolicyVersion"]["VersionId"] == "v6" and new["PolicyVersion"]["IsDefaultVersion"]
    got = env.call("GetPolicyVersion", {"PolicyArn": arn, "VersionId": "v6"})["PolicyVersion"]
    assert json.loads(unquote(got["Document"])) == json.loads(DOC)
    with pytest.raises(AwsError) as err:
        env.call("GetPolicyVersion", {"PolicyArn": arn, "VersionId": "v1"})
    assert err.value.message == f"Policy {arn} version v1 does not exist or is not attachable."
    env.call("CreateUser", {"UserName": "u"})
    env.call("AttachUserPolicy", {"UserName": "u", "PolicyArn": arn})
    assert env.call("GetPolicy", {"PolicyArn": arn})["Policy"]["AttachmentCount"] == 1
    with pytest.raises(AwsError) as err:
        env.call("DeletePolicy", {"PolicyArn": arn})
    assert (err.value.code, err.value.message) == ("DeleteConflict", "Cannot delete a policy attached to entities.")
    env.call("DetachUserPolicy", {"UserName": "u", "PolicyArn": arn})
    with pytest.raises(AwsError) as err:
        env.call("DeletePolicy", {"PolicyArn": arn})
    assert err.value.message.startswith("This policy has more than one version.")
    for v in ("v2", "v3", "v4", "v5"):
        env.call("DeletePolicyVersion", {"PolicyArn": arn, "VersionId": v})
    env.call("DeletePolicy", {"PolicyArn": arn})
    with pytest.raises(AwsError) as err:
        env.call("GetPolicy", {"PolicyArn": arn})
    assert (err.value.code, err.value.message) == ("NoSuchEntity", f"Policy {arn} does not exist or is not attachable.")


def test_managed_policy_requires_current_version_and_size(env: Env) -> None:
    old = json.dumps({"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    with pytest.raises(AwsError) as err:
        env.call("CreatePolicy", {"PolicyName": "old", "PolicyDocument": old})
    assert err.value.message == "Policy document must be version 2012-10-17 or greater."
    huge = json.dumps(allow([f"rds:Describe{i:05d}Thing" for i in range(400)]))
    with pytest.raises(AwsError) as err:
        env.call("CreatePolicy", {"PolicyName": "huge", "PolicyDocument": huge})
    assert (err.value.code, err.value.message) == ("LimitExceeded", "Cannot exceed quota for PolicySize: 6144")


def test_list_policies_scopes(env: Env) -> None:
    env.call("CreatePolicy", {"PolicyName": "mine", "PolicyDocument": DOC})
    local = env.call("ListPolicies", {"Scope": "Local"})["Policies"]
    assert [p["PolicyName"] for p in local] == ["mine"]
    aws = {p["PolicyName"] for p in env.call("ListPolicies", {"Scope": "AWS", "MaxItems": 1000})["Policies"]}
    assert {"AdministratorAccess", "AmazonRDSFullAccess", "AmazonRDSReadOnlyAccess", "SecretsManagerReadWrite",
            "IAMReadOnlyAccess", "AmazonRDSServiceRolePolicy"} <= aws
    assert env.call("ListPolicies", {"OnlyAttached": True})["Policies"] == []
    env.call("CreateGroup", {"GroupName": "g"})
    env.call("AttachGroupPolicy", {"GroupName": "g", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
    attached = env.call("ListPolicies", {"OnlyAttached": True})["Policies"]
    assert [(p["PolicyName"], p["AttachmentCount"]) for p in attached] == [("AdministratorAccess", 1)]
    entities = env.call("ListEntitiesForPolicy", {"PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
    assert [g["GroupName"] for g in entities["PolicyGroups"]] == ["g"] and entities["PolicyUsers"] == []
    admin = env.call("GetPolicyVersion", {"PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
                                          "VersionId": "v1"})["PolicyVersion"]
    assert json.loads(unquote(admin["Document"]))["Statement"] == [{"Effect": "Allow", "Action": "*", "Resource": "*"}]


def test_inline_policies_for_each_entity(env: Env) -> None:
    env.call("CreateUser", {"UserName": "u"})
    env.call("CreateGroup", {"GroupName": "g"})
    env.call("CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": trust({"Service": "ec2.amazonaws.com"})})
    for kind, name in (("User", "u"), ("Group", "g"), ("Role", "r")):
        key = f"{kind}Name"
        env.call(f"Put{kind}Policy", {key: name, "PolicyName": "b", "PolicyDocument": DOC})
        env.call(f"Put{kind}Policy", {key: name, "PolicyName": "a", "PolicyDocument": DOC})
        assert env.call(f"List{kind}Policies", {key: name})["PolicyNames"] == ["a", "b"]
        got = env.call(f"Get{kind}Policy", {key: name, "PolicyName": "a"})
        assert got[key] == name and unquote(got["PolicyDocument"]) == DOC
        env.call(f"Delete{kind}Policy", {key: name, "PolicyName": "a"})
        with pytest.raises(AwsError) as err:
            env.call(f"Get{kind}Policy", {key: name, "PolicyName": "a"})
        assert err.value.message == f"The {kind.lower()} policy with name a cannot be found."
        with pytest.raises(AwsError) as err:
            env.call(f"Put{kind}Policy", {key: name, "PolicyName": "bad", "PolicyDocument": '{"Statement": []}'})
        assert err.value.code == "MalformedPolicyDocument"


def test_attach_detach_limits_and_errors(env: Env) -> None:
    env.call("CreateRole", {"RoleName": "r", "AssumeRolePolicyDocument": trust({"Service": "ec2.amazonaws.com"})})
    arns = []
    for i in range(11):
        arns.append(env.call("CreatePolicy", {"PolicyName": f"p{i}", "PolicyDocument": DOC})["Policy"]["Arn"])
    for arn in arns[:10]:
        env.call("AttachRolePolicy", {"RoleName": "r", "PolicyArn": arn})
    with pytest.raises(AwsError) as err:
        env.call("AttachRolePolicy", {"RoleName": "r", "PolicyArn": arns[10]})
    assert (err.value.code, err.value.message) == ("LimitExceeded", "Cannot exceed quota for PoliciesPerRole: 10")
    listed = env.call("ListAttachedRolePolicies", {"RoleName": "r", "MaxItems": 4})
    assert len(listed["AttachedPolicies"]) == 4 and listed["IsTruncated"]
    with pytest.raises(AwsError) as err:
        env.call("DetachRolePolicy", {"RoleName": "r", "PolicyArn": arns[10]})
    assert (err.value.code, err.value.message) == ("NoSuchEntity", f"Policy {arns[10]} was not found.")
    with pytest.raises(AwsError) as err:
        env.call("AttachRolePolicy", {"RoleName": "r", "PolicyArn": f"arn:aws:iam::{ACCOUNT}:policy/none"})
    assert err.value.message == f"Policy arn:aws:iam::{ACCOUNT}:policy/none does not exist or is not attachable."
