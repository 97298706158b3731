"""Secret resource policies go through the same same-account rules as key policies, through the real
server: a policy naming a role is limited by its sessions' session policy and the role's permissions
boundary, one naming the session ARN is not, and one naming only the account delegates to IAM.

Before the fix a policy naming the account let every user of the account read the secret without any
identity policy.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, UserKeys, unique
from tests.role_sessions import S3_ONLY, Role, V, denial


def share(server: Server, *principals: str) -> tuple[str, str]:
    """A secret (under the AWS managed key) whose policy lets ``principals`` read it: (name, ARN)."""
    sm = server.client("secretsmanager")
    name = unique("shared")
    arn = sm.create_secret(Name=name, SecretString="s3cret")["ARN"]
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps({"Version": V, "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "secretsmanager:GetSecretValue",
        "Resource": "*"}]}))
    return name, arn


def test_session_policy_limits_a_secret_policy_naming_the_role(server: Server, make_user: Any) -> None:
    role = Role(server, make_user)
    _, arn = share(server, role.arn)
    assert role.client("secretsmanager", "plain").get_secret_value(SecretId=arn)["SecretString"] == "s3cret"
    with pytest.raises(ClientError) as exc:
        role.client("secretsmanager", "limited", policy=S3_ONLY).get_secret_value(SecretId=arn)
    assert denial(exc) == (f"User: {role.session_arn('limited')} is not authorized to perform: "
                           f"secretsmanager:GetSecretValue on resource: {arn} because no session policy allows "
                           "the secretsmanager:GetSecretValue action")


def test_boundary_limits_a_secret_policy_naming_the_role(server: Server, make_user: Any) -> None:
    role = Role(server, make_user, boundary=S3_ONLY)
    _, arn = share(server, role.arn)
    with pytest.raises(ClientError) as exc:
        role.client("secretsmanager").get_secret_value(SecretId=arn)
    assert denial(exc).endswith("because no permissions boundary allows the secretsmanager:GetSecretValue action")


def test_secret_policy_naming_the_session_is_not_limited(server: Server, make_user: Any) -> None:
    role = Role(server, make_user, boundary=S3_ONLY)
    _, arn = share(server, role.session_arn("named"))
    got = role.client("secretsmanager", "named", policy=S3_ONLY).get_secret_value(SecretId=arn)
    assert got["SecretString"] == "s3cret"
    with pytest.raises(ClientError) as exc:
        role.client("secretsmanager", "other").get_secret_value(SecretId=arn)
    assert denial(exc).endswith("because no identity-based policy allows the secretsmanager:GetSecretValue action")


def test_secret_policy_naming_the_account_delegates_to_iam(server: Server, make_user: Any) -> None:
    _, arn = share(server, server.account)
    nobody: UserKeys = make_user()
    with pytest.raises(ClientError) as exc:
        server.client("secretsmanager", nobody.access_key, nobody.secret_key).get_secret_value(SecretId=arn)
    assert denial(exc).endswith("because no identity-based policy allows the secretsmanager:GetSecretValue action")
    reader: UserKeys = make_user({"Version": V, "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn}]})
    got = server.client("secretsmanager", reader.access_key, reader.secret_key).get_secret_value(SecretId=arn)
    assert got["SecretString"] == "s3cret"
