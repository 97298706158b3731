"""Attacks on STS through the running server (adversarial review, second pass): role chaining and
transitive session tags.

An entry role whose trust policy forces a session tag (``team``, say, from the caller's own tag) and
marks it transitive: "the corresponding key and value passes to subsequent sessions in a role chain"
(AssumeRole API reference, TransitiveTagKeys), and a chained AssumeRole cannot override it (IAM user
guide, "Chaining roles with session tags"). Otherwise a session of a shared role downstream carries
whatever ``team`` the caller asserts, and every ABAC policy on ``aws:PrincipalTag/team`` is open to it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.conftest import Server, unique

V = "2012-10-17"


def _session(server: Server, creds: dict[str, Any], service: str) -> Any:
    return server.client(service, access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                         session_token=creds["SessionToken"])


def test_transitive_tags_survive_role_chaining(server: Server, make_user: Any) -> None:
    iam, acct = server.client("iam"), server.account
    user = make_user({"Version": V, "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"],
                                                   "Resource": "*"}]})
    iam.tag_user(UserName=user.name, Tags=[{"Key": "team", "Value": "blue"}])
    entry, shared = unique("entry"), unique("shared")
    # the entry role: the caller's own team, and only it, as a transitive session tag
    iam.create_role(RoleName=entry, AssumeRolePolicyDocument=json.dumps({"Version": V, "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "sts:TagSession",
         "Condition": {"StringEquals": {"aws:RequestTag/team": "${aws:PrincipalTag/team}"},
                       "ForAllValues:StringEquals": {"sts:TransitiveTagKeys": ["team"]}}}]}))
    iam.put_role_policy(RoleName=entry, PolicyName="chain", PolicyDocument=json.dumps({"Version": V, "Statement": [
        {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": "*"}]}))
    # a shared role any entry session may assume (and tag, as chaining with transitive tags requires)
    iam.create_role(RoleName=shared, AssumeRolePolicyDocument=json.dumps({"Version": V, "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:role/{entry}"},
         "Action": ["sts:AssumeRole", "sts:TagSession"]}]}))
    iam.put_role_policy(RoleName=shared, PolicyName="whoami", PolicyDocument=json.dumps({"Version": V, "Statement": [
        {"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}]}))

    sts = server.client("sts", user.access_key, user.secret_key)
    first = sts.assume_role(RoleArn=f"arn:aws:iam::{acct}:role/{entry}", RoleSessionName="entry",
                            Tags=[{"Key": "team", "Value": "blue"}], TransitiveTagKeys=["team"])["Credentials"]
    chained = _session(server, first, "sts")
    for key in ("team", "TEAM"):  # a chained session may not override the inherited tag, in any case
        with pytest.raises(ClientError) as info:
            chained.assume_role(RoleArn=f"arn:aws:iam::{acct}:role/{shared}", RoleSessionName="escape",
                                Tags=[{"Key": key, "Value": "red"}])
        assert info.value.response["Error"]["Code"] == "ValidationError", info.value.response
    # without tags of its own, the chained session still carries team=blue (and passes it on)
    second = chained.assume_role(RoleArn=f"arn:aws:iam::{acct}:role/{shared}", RoleSessionName="chained")
    assert _principal_tag(server, second["Credentials"], shared, "team") == "blue"


def _principal_tag(server: Server, creds: dict[str, Any], role: str, key: str) -> str | None:
    """The session's aws:PrincipalTag/<key> as the request path sees it: a Deny naming the value refuses."""
    iam = server.client("iam")
    for value in ("blue", "red"):
        iam.put_role_policy(RoleName=role, PolicyName="probe", PolicyDocument=json.dumps({"Version": V, "Statement": [
            {"Effect": "Deny", "Action": "iam:GetRole", "Resource": "*",
             "Condition": {"StringEquals": {f"aws:PrincipalTag/{key}": value}}}]}))
        try:
            _session(server, creds, "iam").get_role(RoleName=role)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDenied", exc.response
            return value
        finally:
            iam.delete_role_policy(RoleName=role, PolicyName="probe")
    return None


def test_model_patterns_are_ascii_where_aws_is(server: Server, make_user: Any) -> None:
    """botocore's patterns are Java's, whose \\w is ASCII: a SourceIdentity or ExternalId that is a
    Unicode look-alike ("\\u0430dmin", a Cyrillic a) is refused before any trust policy sees it."""
    iam, acct = server.client("iam"), server.account
    user = make_user({"Version": V, "Statement": [{"Effect": "Allow", "Action": "sts:*", "Resource": "*"}]})
    role = unique("pattern")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": V, "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user.arn},
         "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"]}]}))
    sts = server.client("sts", user.access_key, user.secret_key)
    arn = f"arn:aws:iam::{acct}:role/{role}"
    for extra in ({"SourceIdentity": "\u0430dmin"}, {"ExternalId": "\u0430dmin"}):
        with pytest.raises(ClientError) as info:
            sts.assume_role(RoleArn=arn, RoleSessionName="s1", **extra)
        assert info.value.response["Error"]["Code"] == "ValidationError", info.value.response
    assert sts.assume_role(RoleArn=arn, RoleSessionName="s1", SourceIdentity="admin")["SourceIdentity"] == "admin"


def test_a_deny_on_tagged_roles_holds_for_assume_role(server: Server, make_user: Any) -> None:
    """aws:ResourceTag/* of the role is in the context of sts:AssumeRole (ABAC for role assumption):
    "Deny sts:AssumeRole on roles tagged privileged=true" holds even where a trust policy admits the caller
    through its account."""
    iam, acct = server.client("iam"), server.account
    user = make_user({"Version": V, "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/privileged": "true"}}}]})
    trust = json.dumps({"Version": V, "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"}, "Action": "sts:AssumeRole"}]})
    admin, plain = unique("admin"), unique("plain")
    iam.create_role(RoleName=admin, AssumeRolePolicyDocument=trust, Tags=[{"Key": "privileged", "Value": "true"}])
    iam.create_role(RoleName=plain, AssumeRolePolicyDocument=trust)
    sts = server.client("sts", user.access_key, user.secret_key)
    with pytest.raises(ClientError) as info:
        sts.assume_role(RoleArn=f"arn:aws:iam::{acct}:role/{admin}", RoleSessionName="s1")
    assert info.value.response["Error"]["Code"] == "AccessDenied", info.value.response
    sts.assume_role(RoleArn=f"arn:aws:iam::{acct}:role/{plain}", RoleSessionName="s1")
