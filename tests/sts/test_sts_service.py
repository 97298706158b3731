"""STS: GetCallerIdentity, AssumeRole (trust + identity rules, durations, session policies and tags),
GetSessionToken, expiry and persistence of temporary credentials."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from iam_harness import ACCOUNT, Env, allow, deny, trust

from auroral.errors import AccessDenied, AwsError

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/app"


def _role(env: Env, principal: object, **kw: object) -> None:
    env.call("CreateRole", {"RoleName": "app", "AssumeRolePolicyDocument": trust(principal), **kw})
    env.call("PutRolePolicy", {"RoleName": "app", "PolicyName": "p",
                               "PolicyDocument": json.dumps(allow(["iam:List*", "iam:GetRole"]))})


def test_get_caller_identity_needs_no_permission(env: Env) -> None:
    bob = env.make_user("bob")
    assert env.call("GetCallerIdentity", {}, bob) == {
        "UserId": bob.user_id, "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/bob"}
    assert env.call("GetCallerIdentity")["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"


def test_assume_role_named_in_trust_needs_no_identity_policy(env: Env) -> None:
    alice = env.make_user("alice")
    _role(env, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    out = env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "work"}, alice)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["SecretAccessKey"]) == 40
    assert len(creds["SessionToken"]) > 100
    assert creds["Expiration"] == env.clock().replace(microsecond=0) + timedelta(hours=1)
    role_id = env.directory.get_role("app").role_id  # type: ignore[union-attr]
    assert out["AssumedRoleUser"] == {"AssumedRoleId": f"{role_id}:work",
                                      "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/work"}
    signing, session = env.directory.lookup_credentials(creds["AccessKeyId"]) or (None, None)
    assert signing is not None and signing.session_token == creds["SessionToken"]
    assert session is not None and session.kind == "assumed-role"
    assert env.call("GetCallerIdentity", {}, session) == {
        "UserId": f"{role_id}:work", "Account": ACCOUNT, "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/work"}
    env.call("ListUsers", {}, session)  # the role's policies apply
    with pytest.raises(AccessDenied) as err:
        env.call("CreateUser", {"UserName": "x"}, session)
    assert err.value.message.startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/app/work is not authorized")
    keys = env.authorizer.request_context(env.ctx(session))
    assert keys["aws:PrincipalArn"] == ROLE_ARN and keys["aws:PrincipalType"] == "AssumedRole"
    assert keys["aws:MultiFactorAuthPresent"] == "false" and "aws:TokenIssueTime" in keys
    assert "aws:username" not in keys


def test_assume_role_trusting_the_account_needs_identity_policy(env: Env) -> None:
    _role(env, {"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    bob = env.make_user("bob")
    with pytest.raises(AccessDenied) as err:
        env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1"}, bob)
    assert err.value.message.startswith(
        f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: sts:AssumeRole on resource: {ROLE_ARN}")
    carol = env.make_user("carol", allow("sts:AssumeRole", ROLE_ARN))
    env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1"}, carol)


def test_trust_policy_must_admit_the_caller(env: Env) -> None:
    env.make_user("alice")
    _role(env, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    mallory = env.make_user("mallory", allow("sts:AssumeRole"))
    with pytest.raises(AccessDenied) as err:
        env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1"}, mallory)
    assert err.value.message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/mallory is not authorized to perform: sts:AssumeRole on resource: {ROLE_ARN}")
    with pytest.raises(AccessDenied):
        env.call("AssumeRole", {"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/missing", "RoleSessionName": "s1"}, mallory)
    with pytest.raises(AccessDenied) as err:
        env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1"})
    assert err.value.message == "Roles may not be assumed by root accounts."


def test_external_id_condition(env: Env) -> None:
    alice = env.make_user("alice")
    doc = trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}, Condition={"StringEquals": {"sts:ExternalId": "xyz"}})
    env.call("CreateRole", {"RoleName": "app", "AssumeRolePolicyDocument": doc})
    with pytest.raises(AccessDenied):
        env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1"}, alice)
    with pytest.raises(AccessDenied):
        env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1", "ExternalId": "nope"}, alice)
    env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1", "ExternalId": "xyz"}, alice)


def test_durations(env: Env) -> None:
    alice = env.make_user("alice")
    _role(env, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}, MaxSessionDuration=7200)
    base = {"RoleArn": ROLE_ARN, "RoleSessionName": "s1"}
    env.call("AssumeRole", {**base, "DurationSeconds": 7200}, alice)
    with pytest.raises(AwsError) as err:
        env.call("AssumeRole", {**base, "DurationSeconds": 7201}, alice)
    assert (err.value.code, err.value.message) == (
        "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
    with pytest.raises(AwsError) as err:
        env.call("AssumeRole", {**base, "DurationSeconds": 899}, alice)
    assert err.value.message.endswith("Member must have value greater than or equal to 900")


def test_session_policy_and_tags(env: Env) -> None:
    alice = env.make_user("alice")
    _role(env, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    env.call("UpdateAssumeRolePolicy", {"RoleName": "app", "PolicyDocument": json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"},
                                                "Action": ["sts:AssumeRole", "sts:TagSession"]}]})})
    env.call("TagRole", {"RoleName": "app", "Tags": [{"Key": "team", "Value": "db"}]})
    out = env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1",
                                  "Policy": json.dumps(allow("iam:ListUsers")),
                                  "Tags": [{"Key": "project", "Value": "x"}]}, alice)
    assert 0 < out["PackedPolicySize"] <= 100
    session = env.principal_for(out["Credentials"]["AccessKeyId"])
    assert session.tags == {"team": "db", "project": "x"}
    env.call("ListUsers", {}, session)
    with pytest.raises(AccessDenied) as err:
        env.call("ListRoles", {}, session)  # the role allows it, the session policy does not
    assert err.value.message.endswith("because no session policy allows the iam:ListRoles action")
    with pytest.raises(AwsError) as err:
        env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1", "Policy": "{bad"}, alice)
    assert err.value.code == "MalformedPolicyDocument"
    managed = env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s2", "PolicyArns": [
        {"arn": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"}]}, alice)
    env.call("ListRoles", {}, env.principal_for(managed["Credentials"]["AccessKeyId"]))


def test_role_chaining_is_limited_to_one_hour(env: Env) -> None:
    alice = env.make_user("alice")
    _role(env, {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:sts::{ACCOUNT}:assumed-role/app/first"]},
          MaxSessionDuration=43200)
    first = env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "first"}, alice)
    session = env.principal_for(first["Credentials"]["AccessKeyId"])
    with pytest.raises(AwsError) as err:
        env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "second", "DurationSeconds": 7200}, session)
    assert err.value.message == ("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed "
                                 "by role chaining.")
    env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "second"}, session)


def test_temporary_credentials_expire_and_survive_restart(env: Env) -> None:
    alice = env.make_user("alice")
    _role(env, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    creds = env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1", "DurationSeconds": 900},
                     alice)["Credentials"]
    reopened = env.reopen()
    signing, _ = reopened.directory.lookup_credentials(creds["AccessKeyId"]) or (None, None)
    assert signing is not None and signing.secret_access_key == creds["SecretAccessKey"]
    assert signing.session_token == creds["SessionToken"]
    reopened.clock.advance(901)
    with pytest.raises(AwsError) as err:
        reopened.directory.lookup_credentials(creds["AccessKeyId"])
    assert (err.value.code, err.value.status, err.value.message) == (
        "ExpiredToken", 403, "The security token included in the request is expired")


def test_deleted_and_recreated_role_does_not_inherit_sessions(env: Env) -> None:
    alice = env.make_user("alice")
    _role(env, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    creds = env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1"}, alice)["Credentials"]
    env.call("DeleteRolePolicy", {"RoleName": "app", "PolicyName": "p"})
    env.call("DeleteRole", {"RoleName": "app"})
    _role(env, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    session = env.principal_for(creds["AccessKeyId"])
    with pytest.raises(AccessDenied):
        env.call("ListUsers", {}, session)


def test_get_session_token(env: Env) -> None:
    bob = env.make_user("bob", allow(["sts:GetSessionToken", "iam:ListUsers"]))
    creds = env.call("GetSessionToken", {}, bob)["Credentials"]
    assert creds["Expiration"] - env.clock().replace(microsecond=0) == timedelta(hours=12)
    session = env.principal_for(creds["AccessKeyId"])
    assert session.arn == bob.arn and session.kind == "user" and session.token_expires is not None
    # outside IAM and STS the user's own policies apply
    env.authorizer.authorize(env.ctx(session, "DescribeDBClusters", service="rds"), "iam:ListUsers", ["*"])
    with pytest.raises(AwsError) as err:  # no IAM API without MFA
        env.call("ListUsers", {}, session)
    assert (err.value.code, err.value.status) == ("InvalidClientTokenId", 403)
    assert env.authorizer.request_context(env.ctx(session))["aws:MultiFactorAuthPresent"] == "false"
    with pytest.raises(AccessDenied) as err:
        env.call("GetSessionToken", {}, session)
    assert err.value.message == "Cannot call GetSessionToken with session credentials"
    with pytest.raises(AwsError) as err:
        env.call("GetSessionToken", {"DurationSeconds": 129601}, bob)
    assert err.value.code == "ValidationError"
    root = env.call("GetSessionToken", {"DurationSeconds": 7200})["Credentials"]  # the root gets at most 1 hour
    assert root["Expiration"] - env.clock().replace(microsecond=0) == timedelta(hours=1)
    assert env.principal_for(root["AccessKeyId"]).is_root


def _trust_actions(principal: object, *actions: str, **extra: object) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": principal, "Action": list(actions), **extra}]})


def test_session_tags_need_tag_session_in_the_trust_policy(env: Env) -> None:
    alice = env.make_user("alice")
    _role(env, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    env.call("TagRole", {"RoleName": "app", "Tags": [{"Key": "team", "Value": "db"}]})
    tagged = {"RoleArn": ROLE_ARN, "RoleSessionName": "s1", "Tags": [{"Key": "Team", "Value": "admins"}]}
    for params in (tagged, {"RoleArn": ROLE_ARN, "RoleSessionName": "s1", "TransitiveTagKeys": ["team"]}):
        with pytest.raises(AccessDenied) as err:
            env.call("AssumeRole", params, alice)
        assert err.value.message == (f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: "
                                     f"sts:TagSession on resource: {ROLE_ARN}")
    env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1"}, alice)  # no tags: no TagSession
    env.call("UpdateAssumeRolePolicy", {"RoleName": "app", "PolicyDocument": _trust_actions(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}, "sts:AssumeRole", "sts:TagSession")})
    with pytest.raises(AwsError) as err:  # keys are case-insensitive: one key, one value
        env.call("AssumeRole", {**tagged, "Tags": [{"Key": "team", "Value": "db"}, {"Key": "Team", "Value": "x"}]},
                 alice)
    assert err.value.code == "ValidationError"
    out = env.call("AssumeRole", tagged, alice)
    # a session tag overrides the role's tag of the same key, regardless of case
    assert env.principal_for(out["Credentials"]["AccessKeyId"]).tags == {"Team": "admins"}


def test_tag_session_conditions_and_identity_deny(env: Env) -> None:
    alice = env.make_user("alice", deny("sts:TagSession", ROLE_ARN, Condition={
        "StringEquals": {"aws:RequestTag/team": "admins"}}))
    _role(env, {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})
    alice_arn = {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}
    env.call("UpdateAssumeRolePolicy", {"RoleName": "app", "PolicyDocument": json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": alice_arn, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": alice_arn, "Action": "sts:TagSession",
             "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "project"]}}}]})})
    with pytest.raises(AccessDenied) as err:  # the trust policy's condition on the keys
        env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1",
                                "Tags": [{"Key": "cost", "Value": "1"}]}, alice)
    assert "sts:TagSession" in err.value.message
    with pytest.raises(AccessDenied) as err:  # the identity policy's Deny
        env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1",
                                "Tags": [{"Key": "team", "Value": "admins"}]}, alice)
    assert err.value.message.endswith("with an explicit deny in an identity-based policy")
    env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "s1",
                            "Tags": [{"Key": "team", "Value": "db"}]}, alice)


def test_tag_session_needs_identity_grant_when_trust_names_the_account(env: Env) -> None:
    bob = env.make_user("bob", allow("sts:AssumeRole", ROLE_ARN))
    env.call("CreateRole", {"RoleName": "app", "AssumeRolePolicyDocument": _trust_actions(
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "sts:AssumeRole", "sts:TagSession")})
    tagged = {"RoleArn": ROLE_ARN, "RoleSessionName": "s1", "Tags": [{"Key": "team", "Value": "x"}]}
    with pytest.raises(AccessDenied) as err:
        env.call("AssumeRole", tagged, bob)
    assert err.value.message.endswith("because no identity-based policy allows the sts:TagSession action")
    env.call("PutUserPolicy", {"UserName": "bob", "PolicyName": "tag",
                               "PolicyDocument": json.dumps(allow("sts:TagSession", ROLE_ARN))})
    env.call("AssumeRole", tagged, bob)


def test_source_identity_needs_set_source_identity_and_cannot_change(env: Env) -> None:
    alice = env.make_user("alice")
    _role(env, {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:sts::{ACCOUNT}:assumed-role/app/first"]})
    with pytest.raises(AccessDenied) as err:
        env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "first", "SourceIdentity": "alice"}, alice)
    assert err.value.message == (f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: "
                                 f"sts:SetSourceIdentity on resource: {ROLE_ARN}")
    env.call("UpdateAssumeRolePolicy", {"RoleName": "app", "PolicyDocument": _trust_actions(
        {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:sts::{ACCOUNT}:assumed-role/app/first"]},
        "sts:AssumeRole", "sts:SetSourceIdentity")})
    first = env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "first", "SourceIdentity": "alice"},
                     alice)
    assert first["SourceIdentity"] == "alice"
    session = env.principal_for(first["Credentials"]["AccessKeyId"])
    with pytest.raises(AccessDenied):
        env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "second", "SourceIdentity": "mallory"},
                 session)
    second = env.call("AssumeRole", {"RoleArn": ROLE_ARN, "RoleSessionName": "second"}, session)
    assert second["SourceIdentity"] == "alice"
