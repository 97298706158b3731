"""Key policies that name a role, through the real server: a session of the role is still held to its
session policy (AssumeRole ``Policy``) and to the role's permissions boundary, as AWS documents for a
resource-based policy that names the role ARN; a key policy naming the session ARN itself is held to
neither (explicit denies aside). Grants to the role follow the role-ARN rule.

Before the fix a key policy naming the role let every session of it encrypt and decrypt, whatever its
session policy or the role's boundary said.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server
from tests.role_sessions import KMS_ALL, S3_ONLY, Role, V, denial


def key_for(server: Server, *principals: str) -> dict[str, Any]:
    """A key whose policy lets ``principals`` encrypt and decrypt, and delegates administration to IAM."""
    policy = {"Version": V, "Statement": [
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{server.account}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": list(principals)},
         "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}]}
    return dict(server.client("kms").create_key(Policy=json.dumps(policy))["KeyMetadata"])


def test_session_policy_limits_a_key_policy_naming_the_role(server: Server, make_user: Any) -> None:
    role = Role(server, make_user)
    key = key_for(server, role.arn)
    # Without a session policy the role's sessions may use the key: the key policy names the role.
    plain = role.client("kms", "plain")
    blob = plain.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    assert plain.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    # A session whose session policy allows only S3 may not.
    limited = role.client("kms", "limited", policy=S3_ONLY)
    with pytest.raises(ClientError) as exc:
        limited.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert denial(exc) == (f"User: {role.session_arn('limited')} is not authorized to perform: kms:Encrypt on "
                           f"resource: {key['Arn']} because no session policy allows the kms:Encrypt action")
    with pytest.raises(ClientError) as exc:
        limited.decrypt(CiphertextBlob=blob)
    assert denial(exc).endswith("because no session policy allows the kms:Decrypt action")
    # A session policy that allows kms lets the session use the key again.
    allowed = role.client("kms", "allowed", policy=KMS_ALL)
    assert allowed.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"


def test_boundary_limits_a_key_policy_naming_the_role(server: Server, make_user: Any) -> None:
    role = Role(server, make_user, boundary=S3_ONLY)
    server.client("iam").put_role_policy(RoleName=role.name, PolicyName="kms", PolicyDocument=json.dumps(KMS_ALL))
    key = key_for(server, role.arn)
    kms = role.client("kms")
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert denial(exc) == (f"User: {role.session_arn('s1')} is not authorized to perform: kms:Encrypt on "
                           f"resource: {key['Arn']} because no permissions boundary allows the kms:Encrypt action")
    # A boundary that allows kms lifts the limit.
    bounded = Role(server, make_user, boundary=KMS_ALL)
    key = key_for(server, bounded.arn)
    bounded.client("kms").encrypt(KeyId=key["KeyId"], Plaintext=b"x")


def test_key_policy_naming_the_session_is_not_limited(server: Server, make_user: Any) -> None:
    role = Role(server, make_user, boundary=S3_ONLY)
    key = key_for(server, role.session_arn("named"))
    # The grant goes to the session itself: neither its session policy nor the role's boundary limits it.
    named = role.client("kms", "named", policy=S3_ONLY)
    blob = named.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert named.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    # Another session of the same role is not named (and the role has no identity policy).
    with pytest.raises(ClientError) as exc:
        role.client("kms", "other").encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert denial(exc).endswith("because no identity-based policy allows the kms:Encrypt action")
    # An explicit deny in the session policy still wins.
    deny = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                                        {"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"}]}
    with pytest.raises(ClientError) as exc:
        role.client("kms", "named", policy=deny).encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert denial(exc).endswith("with an explicit deny in a session policy")


def test_grant_to_the_role_is_limited_like_the_key_policy(server: Server, make_user: Any) -> None:
    role = Role(server, make_user)
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]  # the default policy: only IAM policies, and the role has none
    kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=role.arn, Operations=["Encrypt", "Decrypt"])
    role.client("kms", "plain").encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with pytest.raises(ClientError) as exc:
        role.client("kms", "limited", policy=S3_ONLY).encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert denial(exc).endswith("because no session policy allows the kms:Encrypt action")
    # A grant to one session is that session's own.
    kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=role.session_arn("mine"), Operations=["Encrypt"])
    role.client("kms", "mine", policy=S3_ONLY).encrypt(KeyId=key["KeyId"], Plaintext=b"x")
