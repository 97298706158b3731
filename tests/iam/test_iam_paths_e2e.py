"""IAM operations on existing entities are authorized on the entity's real ARN (its path, its real
name), however the request spells the name: end to end through the running server with boto3.

The attack: a helpdesk user allowed ``iam:*`` but denied ``iam:*`` on ``user/admins/*`` (and the
admins group, role and policies) must not be able to mint an access key for an administrator created
with Path ``/admins/``, attach policies to it, put it in the admins group, or rewrite an admin role's
trust policy, by naming the entity without its path or in another case.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from tests.conftest import Server, UserKeys, unique

from auroral.iam.actions import EXISTING_ENTITY

ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"
_PARAM = {"user": "UserName", "group": "GroupName", "role": "RoleName", "policy": "PolicyArn"}


@dataclass
class Admins:
    user: str
    group: str
    role: str
    policy_arn: str
    key_id: str
    arns: dict[str, str]  # kind -> real ARN


@pytest.fixture
def admins(server: Server) -> Iterator[Admins]:
    iam = server.client("iam")
    tag = unique("adm")
    user, group, role = f"{tag}-user", f"{tag}-group", f"{tag}-role"
    u = iam.create_user(UserName=user, Path="/admins/")["User"]
    key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    g = iam.create_group(GroupName=group, Path="/admins/")["Group"]
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{server.account}:root"}, "Action": "sts:AssumeRole"}]}
    r = iam.create_role(RoleName=role, Path="/admins/", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    p = iam.create_policy(PolicyName=f"{tag}-policy", Path="/admins/", PolicyDocument=json.dumps(ALLOW_ALL))["Policy"]
    iam.attach_group_policy(GroupName=group, PolicyArn=ADMIN_POLICY)
    iam.attach_role_policy(RoleName=role, PolicyArn=ADMIN_POLICY)
    arns = {"user": u["Arn"], "group": g["Arn"], "role": r["Arn"], "policy": p["Arn"]}
    assert arns["user"] == f"arn:aws:iam::{server.account}:user/admins/{user}"
    yield Admins(user, group, role, p["Arn"], key, arns)


def _helpdesk(server: Server, make_user: Any) -> UserKeys:
    acct = server.account
    fence = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iam:*", "Resource": [
        f"arn:aws:iam::{acct}:user/admins/*", f"arn:aws:iam::{acct}:group/admins/*",
        f"arn:aws:iam::{acct}:role/admins/*", f"arn:aws:iam::{acct}:policy/admins/*"]}]}
    return make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}, fence)


def _denied_on(err: pytest.ExceptionInfo[ClientError], arn: str) -> None:
    error = err.value.response["Error"]
    assert error["Code"] == "AccessDenied", error
    assert f" on resource: {arn} with an explicit deny in an identity-based policy" in error["Message"], error


def _spellings(name: str) -> list[str]:
    return [name, name.upper(), name[0].upper() + name[1:]]


def test_helpdesk_cannot_become_admin_through_pathed_entities(server: Server, admins: Admins,
                                                              make_user: Any) -> None:
    helpdesk = _helpdesk(server, make_user)
    iam = server.client("iam")
    hd = server.client("iam", helpdesk.access_key, helpdesk.secret_key)
    user_arn, group_arn, role_arn = admins.arns["user"], admins.arns["group"], admins.arns["role"]
    doc = json.dumps(ALLOW_ALL)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": helpdesk.arn}, "Action": "sts:AssumeRole"}]})
    for name in _spellings(admins.user):
        with pytest.raises(ClientError) as err:
            hd.create_access_key(UserName=name)
        _denied_on(err, user_arn)
        with pytest.raises(ClientError) as err:
            hd.update_access_key(UserName=name, AccessKeyId=admins.key_id, Status="Inactive")
        _denied_on(err, user_arn)
        with pytest.raises(ClientError) as err:
            hd.attach_user_policy(UserName=name, PolicyArn=ADMIN_POLICY)
        _denied_on(err, user_arn)
        with pytest.raises(ClientError) as err:
            hd.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc)
        _denied_on(err, user_arn)
    for name in _spellings(admins.group):
        with pytest.raises(ClientError) as err:
            hd.add_user_to_group(GroupName=name, UserName=helpdesk.name)
        _denied_on(err, group_arn)
    for name in _spellings(admins.role):
        with pytest.raises(ClientError) as err:
            hd.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
        _denied_on(err, role_arn)
        with pytest.raises(ClientError) as err:
            hd.attach_role_policy(RoleName=name, PolicyArn=ADMIN_POLICY)
        _denied_on(err, role_arn)
    with pytest.raises(ClientError) as err:  # the key's owner is the resource
        hd.get_access_key_last_used(AccessKeyId=admins.key_id)
    _denied_on(err, user_arn)
    with pytest.raises(ClientError) as err:  # moving a user into the fenced path: the target ARN counts
        hd.update_user(UserName=helpdesk.name, NewPath="/admins/")
    _denied_on(err, f"arn:aws:iam::{server.account}:user/admins/{helpdesk.name}")

    # nothing changed
    keys = iam.list_access_keys(UserName=admins.user)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(admins.key_id, "Active")]
    assert iam.list_attached_user_policies(UserName=admins.user)["AttachedPolicies"] == []
    assert iam.list_user_policies(UserName=admins.user)["PolicyNames"] == []
    assert iam.get_group(GroupName=admins.group)["Users"] == []
    role = iam.get_role(RoleName=admins.role)["Role"]
    assert helpdesk.arn not in json.dumps(role["AssumeRolePolicyDocument"])
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=admins.role)["AttachedPolicies"]] == [
        ADMIN_POLICY]

    # the Allow works outside the fence, in any case of the name: it is the Deny that stops the attack
    other = iam.create_user(UserName=unique("plain"))["User"]["UserName"]
    created = hd.create_access_key(UserName=other.upper())["AccessKey"]
    assert created["UserName"] == other
    hd.delete_access_key(UserName=other, AccessKeyId=created["AccessKeyId"])


def _params(client: Any, op: str, kind: str, target: str, admins: Admins, helpdesk: UserKeys) -> dict[str, Any]:
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": helpdesk.arn}, "Action": "sts:AssumeRole"}]})
    fill: dict[str, Any] = {
        "UserName": helpdesk.name,  # AddUserToGroup / RemoveUserFromGroup: the helpdesk joins the group
        "PolicyArn": ADMIN_POLICY,
        "PolicyName": "p",
        "PolicyDocument": trust if op == "UpdateAssumeRolePolicy" else json.dumps(ALLOW_ALL),
        "AccessKeyId": admins.key_id,
        "Status": "Inactive",
        "VersionId": "v1",
        "Tags": [{"Key": "owner", "Value": "helpdesk"}],
        "TagKeys": ["owner"],
        "PermissionsBoundary": ADMIN_POLICY,
        "Description": "owned",
    }
    params: dict[str, Any] = {_PARAM[kind]: target}
    shape = client.meta.service_model.operation_model(op).input_shape
    for member in shape.required_members:
        if member not in params:
            params[member] = fill[member]
    return params


def test_every_operation_on_an_existing_entity_is_authorized_on_its_real_arn(
    server: Server, admins: Admins, make_user: Any
) -> None:
    """Walk the authorization table: every IAM operation whose resource is an existing user, group,
    role or managed policy is refused by a Deny on the entity's pathed ARN, for every spelling of the
    name the operation accepts (as created, upper case, capitalized)."""
    helpdesk = _helpdesk(server, make_user)
    hd = server.client("iam", helpdesk.access_key, helpdesk.secret_key)
    assert len(EXISTING_ENTITY) > 50 and set(EXISTING_ENTITY.values()) == {"user", "group", "role", "policy"}
    names = {"user": admins.user, "group": admins.group, "role": admins.role}
    checked = 0
    for op, kind in sorted(EXISTING_ENTITY.items()):
        spellings = [admins.policy_arn] if kind == "policy" else _spellings(names[kind])
        for target in spellings:
            with pytest.raises(ClientError) as err:
                getattr(hd, xform_name(op))(**_params(hd, op, kind, target, admins, helpdesk))
            _denied_on(err, admins.arns[kind])
            checked += 1
        if kind == "policy":
            # IAM finds a managed policy by its exact ARN only: another spelling names no policy
            # (NoSuchEntity) and never reaches the real one
            prefix, _, name = admins.policy_arn.rpartition("/")
            for target in (f"{prefix}/{name.upper()}", admins.policy_arn.replace("/admins/", "/")):
                with pytest.raises(ClientError) as err:
                    getattr(hd, xform_name(op))(**_params(hd, op, kind, target, admins, helpdesk))
                assert err.value.response["Error"]["Code"] in ("NoSuchEntity", "AccessDenied"), op
    assert checked > 150
    # everything is still in place
    iam = server.client("iam")
    assert iam.get_user(UserName=admins.user)["User"]["Arn"] == admins.arns["user"]
    assert iam.get_policy(PolicyArn=admins.policy_arn)["Policy"]["DefaultVersionId"] == "v1"
    assert iam.list_access_keys(UserName=admins.user)["AccessKeyMetadata"][0]["Status"] == "Active"


def test_operations_without_a_user_name_act_on_the_caller_by_its_real_arn(server: Server) -> None:
    iam = server.client("iam")
    name = unique("pathed")
    arn = iam.create_user(UserName=name, Path="/admins/")["User"]["Arn"]
    fence = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "iam:*", "Resource": f"arn:aws:iam::{server.account}:user/admins/*"}]}
    iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
    iam.put_user_policy(UserName=name, PolicyName="fence", PolicyDocument=json.dumps(fence))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    me = server.client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    for call in (me.get_user, me.list_access_keys, me.create_access_key,
                 lambda: me.update_access_key(AccessKeyId=key["AccessKeyId"], Status="Inactive"),
                 lambda: me.delete_access_key(AccessKeyId=key["AccessKeyId"])):
        with pytest.raises(ClientError) as err:
            call()
        _denied_on(err, arn)
    assert len(iam.list_access_keys(UserName=name)["AccessKeyMetadata"]) == 1
