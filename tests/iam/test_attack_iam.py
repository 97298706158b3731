"""Attacks on IAM authorization through the running server (adversarial review, second pass).

IAM is one directory whose entities' ARNs are ``arn:aws:iam::...`` whatever region a call is signed
for. A call signed for a region of another partition (``cn-north-1``, ``us-gov-west-1``) must be
authorized on those same ARNs: a Deny on ``arn:aws:iam::<acct>:user/admins/*`` holds for a CreateUser
signed for ``cn-north-1`` (which would otherwise be authorized on ``arn:aws-cn:iam::...`` and create
``arn:aws:iam::...:user/admins/...`` all the same).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import unique

OTHER_PARTITIONS = ("cn-north-1", "us-gov-west-1")


def _denied(call: Any, **kwargs: Any) -> None:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    assert info.value.response["Error"]["Code"] == "AccessDenied", info.value.response


@pytest.mark.parametrize("region", OTHER_PARTITIONS)
def test_creating_under_a_denied_path_signed_for_another_partition(
        server: Any, make_user: Any, iam: Any, region: str) -> None:
    acct = server.account
    user = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": [
            f"arn:aws:iam::{acct}:user/admins/*", f"arn:aws:iam::{acct}:role/admins/*",
            f"arn:aws:iam::{acct}:group/admins/*", f"arn:aws:iam::{acct}:policy/admins/*"]},
        {"Effect": "Deny", "Action": "iam:ListUsers", "Resource": f"arn:aws:iam::{acct}:user/*"},
    ]})
    attacker = server.client("iam", user.access_key, user.secret_key, region_name=region)
    name = unique("sneaky")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"}, "Action": "sts:AssumeRole"}]})
    document = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
                                                                    "Resource": "*"}]})
    _denied(attacker.create_user, UserName=name, Path="/admins/")
    _denied(attacker.create_role, RoleName=name, Path="/admins/", AssumeRolePolicyDocument=trust)
    _denied(attacker.create_group, GroupName=name, Path="/admins/")
    _denied(attacker.create_policy, PolicyName=name, Path="/admins/", PolicyDocument=document)
    _denied(attacker.list_users)
    for call, kwargs in ((iam.get_user, {"UserName": name}), (iam.get_role, {"RoleName": name}),
                         (iam.get_group, {"GroupName": name})):
        with pytest.raises(ClientError) as info:
            call(**kwargs)
        assert info.value.response["Error"]["Code"] == "NoSuchEntity"
    # outside the denied path the same calls work, and the ARNs IAM reports are arn:aws:
    made = attacker.create_user(UserName=name, Path="/dev/")["User"]
    assert made["Arn"] == f"arn:aws:iam::{acct}:user/dev/{name}"
    iam.delete_user(UserName=name)


@pytest.mark.parametrize("name", ["\u0430dmin", "\u212aate", "\u0130nfra", "adm\u0131n"])
def test_names_are_ascii(server: Any, iam: Any, name: str) -> None:
    """IAM names and role session names are ASCII, as AWS's: a Unicode look-alike of another entity
    ("\u0430dmin", a Cyrillic a) cannot be created, nor one whose lower-case form, the directory's
    key, is another name's (the Kelvin sign lower-cases to "k")."""
    for call, kwargs in ((iam.create_user, {"UserName": name}), (iam.create_group, {"GroupName": name}),
                         (iam.create_role, {"RoleName": name, "AssumeRolePolicyDocument": json.dumps(
                             {"Version": "2012-10-17", "Statement": []})})):
        with pytest.raises(ClientError) as info:
            call(**kwargs)
        assert info.value.response["Error"]["Code"] == "ValidationError", info.value.response


def test_role_session_names_are_ascii(server: Any, make_user: Any, iam: Any) -> None:
    user = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
    role = unique("ascii")
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    sts = server.client("sts", user.access_key, user.secret_key)
    with pytest.raises(ClientError) as info:
        sts.assume_role(RoleArn=arn, RoleSessionName="\u0430dmin")
    assert info.value.response["Error"]["Code"] == "ValidationError", info.value.response
    assert sts.assume_role(RoleArn=arn, RoleSessionName="admin")["AssumedRoleUser"]["Arn"].endswith("/admin")
