"""STS end to end through the running server with boto3: session tags need sts:TagSession, a source
identity sts:SetSourceIdentity, and GetSessionToken credentials without MFA cannot call IAM."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server, unique


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _creds(out: dict[str, Any]) -> tuple[str, str, str]:
    c = out["Credentials"]
    return c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]


def test_session_tags_need_tag_session_and_cannot_escape_abac(server: Server, make_user: Any) -> None:
    iam = server.client("iam")
    caller = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
    role = unique("abac")
    role_arn = iam.create_role(
        RoleName=role, Tags=[{"Key": "team", "Value": "dev"}],
        AssumeRolePolicyDocument=_doc({"Effect": "Allow", "Principal": {"AWS": caller.arn}, "Action": "sts:AssumeRole"}),
    )["Role"]["Arn"]
    # ABAC: the role reads users of its own team only
    iam.put_role_policy(RoleName=role, PolicyName="abac", PolicyDocument=_doc(
        {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}}))
    admin = iam.create_user(UserName=unique("boss"), Tags=[{"Key": "team", "Value": "admins"}])["User"]["UserName"]
    dev = iam.create_user(UserName=unique("dev"), Tags=[{"Key": "team", "Value": "dev"}])["User"]["UserName"]
    sts = server.client("sts", caller.access_key, caller.secret_key)

    # the attack: pass team=admins as a session tag to override the role's team=dev
    for extra in ({"Tags": [{"Key": "team", "Value": "admins"}]},
                  {"Tags": [{"Key": "team", "Value": "admins"}], "TransitiveTagKeys": ["team"]},
                  {"TransitiveTagKeys": ["team"]}):
        with pytest.raises(ClientError) as err:
            sts.assume_role(RoleArn=role_arn, RoleSessionName="s1", **extra)
        error = err.value.response["Error"]
        assert error["Code"] == "AccessDenied"
        assert error["Message"].startswith(
            f"User: {caller.arn} is not authorized to perform: sts:TagSession on resource: {role_arn}"), error

    # without tags the role's own tag applies
    plain = server.client("iam", *_creds(sts.assume_role(RoleArn=role_arn, RoleSessionName="s1")))
    plain.get_user(UserName=dev)
    with pytest.raises(ClientError) as err:
        plain.get_user(UserName=admin)
    assert err.value.response["Error"]["Code"] == "AccessDenied"

    # once the trust policy allows sts:TagSession, session tags are legitimate and override the role's
    iam.update_assume_role_policy(RoleName=role, PolicyDocument=_doc(
        {"Effect": "Allow", "Principal": {"AWS": caller.arn}, "Action": ["sts:AssumeRole", "sts:TagSession"]}))
    tagged = server.client("iam", *_creds(sts.assume_role(
        RoleArn=role_arn, RoleSessionName="s1", Tags=[{"Key": "team", "Value": "admins"}])))
    tagged.get_user(UserName=admin)
    with pytest.raises(ClientError):
        tagged.get_user(UserName=dev)

    # an identity-policy Deny on sts:TagSession still holds
    iam.put_user_policy(UserName=caller.name, PolicyName="no-tags", PolicyDocument=_doc(
        {"Effect": "Deny", "Action": "sts:TagSession", "Resource": "*"}))
    with pytest.raises(ClientError) as err:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="s1", Tags=[{"Key": "team", "Value": "admins"}])
    error = err.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    assert error["Message"] == (f"User: {caller.arn} is not authorized to perform: sts:TagSession on resource: "
                                f"{role_arn} with an explicit deny in an identity-based policy")
    sts.assume_role(RoleArn=role_arn, RoleSessionName="s1")  # AssumeRole itself is still allowed


def test_source_identity_needs_set_source_identity(server: Server, make_user: Any) -> None:
    iam = server.client("iam")
    caller = make_user()
    role = unique("src")
    principal = {"AWS": caller.arn}
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=_doc(
        {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}))["Role"]["Arn"]
    sts = server.client("sts", caller.access_key, caller.secret_key)
    with pytest.raises(ClientError) as err:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="s1", SourceIdentity="someone-else")
    assert err.value.response["Error"]["Message"] == (
        f"User: {caller.arn} is not authorized to perform: sts:SetSourceIdentity on resource: {role_arn}")
    iam.update_assume_role_policy(RoleName=role, PolicyDocument=_doc(
        {"Effect": "Allow", "Principal": principal, "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
         "Condition": {"StringEquals": {"sts:SourceIdentity": caller.name}}}))
    with pytest.raises(ClientError):
        sts.assume_role(RoleArn=role_arn, RoleSessionName="s1", SourceIdentity="someone-else")
    out = sts.assume_role(RoleArn=role_arn, RoleSessionName="s1", SourceIdentity=caller.name)
    assert out["SourceIdentity"] == caller.name


def test_get_session_token_credentials_without_mfa_cannot_call_iam(server: Server, make_user: Any) -> None:
    iam = server.client("iam")
    user = make_user({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    role = unique("gst")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=_doc(
        {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "sts:AssumeRole"}))["Role"]["Arn"]
    temp = _creds(server.client("sts", user.access_key, user.secret_key).get_session_token(DurationSeconds=900))
    root_temp = _creds(server.client("sts").get_session_token(DurationSeconds=900))
    for creds in (temp, root_temp):
        temp_iam = server.client("iam", *creds)
        for call in (temp_iam.list_users, lambda c=temp_iam: c.create_user(UserName=unique("x")),  # type: ignore[misc]
                     lambda c=temp_iam: c.create_access_key(UserName=user.name)):  # type: ignore[misc]
            with pytest.raises(ClientError) as err:
                call()
            error = err.value.response["Error"]
            assert error["Code"] == "InvalidClientTokenId", error
            assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        temp_sts = server.client("sts", *creds)
        temp_sts.get_caller_identity()
        with pytest.raises(ClientError) as err:
            temp_sts.get_session_token()
        assert err.value.response["Error"]["Code"] == "AccessDenied"
    assert len(iam.list_access_keys(UserName=user.name)["AccessKeyMetadata"]) == 1
    temp_sts = server.client("sts", *temp)
    assert temp_sts.get_caller_identity()["Arn"] == user.arn
    # AssumeRole is one of the two STS operations allowed, and other services take the credentials
    assumed = temp_sts.assume_role(RoleArn=role_arn, RoleSessionName="from-temp")
    assert assumed["AssumedRoleUser"]["Arn"].endswith(f":assumed-role/{role}/from-temp")
    server.client("rds", *temp).describe_db_clusters()
    # long-term keys of the same user still call IAM
    server.client("iam", user.access_key, user.secret_key).list_users()
