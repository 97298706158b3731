"""IAM and STS end to end: unmodified boto3 and the AWS CLI against a running auroral."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _trust(principal: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]})


def _name(prefix: str) -> str:
    return f"{prefix}-{time.time_ns() % 10**9}"


def test_users_policies_and_decoded_documents(server: Any, iam: Any) -> None:
    name = _name("e2e")
    user = iam.create_user(UserName=name, Tags=[{"Key": "team", "Value": "db"}])["User"]
    assert user["Arn"] == f"arn:aws:iam::{server.account}:user/{name}"
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds:Describe*", "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(doc))
    assert iam.get_user_policy(UserName=name, PolicyName="p")["PolicyDocument"] == doc  # botocore decodes it
    arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert version["Document"] == doc and version["IsDefaultVersion"] is True
    paginator = iam.get_paginator("list_policies")
    names = [p["PolicyName"] for page in paginator.paginate(Scope="AWS", PaginationConfig={"PageSize": 3})
             for p in page["Policies"]]
    assert "AdministratorAccess" in names and len(names) == len(set(names))
    with pytest.raises(ClientError) as err:
        iam.get_user(UserName=name + "-missing")
    assert err.value.response["Error"]["Code"] == "NoSuchEntity"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert isinstance(err.value, iam.exceptions.NoSuchEntityException)


def test_user_keys_authorization_and_assume_role(server: Any, iam: Any, make_user: Any) -> None:
    bob = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:ListUsers", "sts:GetSessionToken"], "Resource": "*"}]})
    bob_iam = server.client("iam", bob.access_key, bob.secret_key)
    bob_iam.list_users()
    with pytest.raises(ClientError) as err:
        bob_iam.list_roles()
    error = err.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert error["Message"] == (f"User: {bob.arn} is not authorized to perform: iam:ListRoles on resource: "
                                f"arn:aws:iam::{server.account}:role/* because no identity-based policy allows "
                                "the iam:ListRoles action")
    sts = server.client("sts", bob.access_key, bob.secret_key)
    assert sts.get_caller_identity()["Arn"] == bob.arn

    role = _name("role")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=_trust({"AWS": bob.arn}))
    iam.attach_role_policy(RoleName=role, PolicyArn="arn:aws:iam::aws:policy/IAMReadOnlyAccess")
    out = sts.assume_role(RoleArn=f"arn:aws:iam::{server.account}:role/{role}", RoleSessionName="e2e")
    creds = out["Credentials"]
    role_iam = server.client("iam", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    role_iam.list_roles()
    role_sts = server.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert role_sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{server.account}:assumed-role/{role}/e2e"
    # a wrong session token is refused
    token = creds["SessionToken"]
    wrong = ("y" if token[0] == "x" else "x") + token[1:]  # always a different token
    bad = server.client("iam", creds["AccessKeyId"], creds["SecretAccessKey"], wrong)
    with pytest.raises(ClientError):
        bad.list_roles()
    session = sts.get_session_token(DurationSeconds=900)["Credentials"]
    temp = server.client("iam", session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
    with pytest.raises(ClientError) as err:  # GetSessionToken credentials without MFA cannot call IAM
        temp.list_users()
    assert err.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_awscli_reads_and_writes(server: Any) -> None:
    name = _name("cli")
    created = server.cli_json("iam", "create-user", "--user-name", name)
    assert created["User"]["UserName"] == name
    listed = server.cli_json("iam", "list-users")
    assert name in [u["UserName"] for u in listed["Users"]]
    key = server.cli_json("iam", "create-access-key", "--user-name", name)["AccessKey"]
    assert server.cli_json("iam", "list-access-keys", "--user-name", name)["AccessKeyMetadata"][0][
        "AccessKeyId"] == key["AccessKeyId"]
    denied = server.cli("iam", "list-roles", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"],
                        check=False)
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr
