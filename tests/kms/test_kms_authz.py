"""Key policies evaluated together with IAM, as AWS documents for KMS: the key policy must allow,
directly or by delegating to the account (then IAM must allow too); root is subject to it as well."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, UserKeys

KMS_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}


def client_for(server: Server, user: UserKeys) -> Any:
    return server.client("kms", access_key=user.access_key, secret_key=user.secret_key)


def denied(exc: pytest.ExceptionInfo[ClientError]) -> str:
    err = exc.value.response
    assert err["Error"]["Code"] == "AccessDeniedException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(err["Error"]["Message"])


def naming_only(principal_arn: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "OnlyThisPrincipal", "Effect": "Allow", "Principal": {"AWS": principal_arn},
        "Action": "kms:*", "Resource": "*"}]})


def test_default_policy_delegates_to_iam(server: Server, make_user: Any) -> None:
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]
    nobody = make_user()
    with pytest.raises(ClientError) as exc:
        client_for(server, nobody).describe_key(KeyId=key["KeyId"])
    assert denied(exc) == (f"User: {nobody.arn} is not authorized to perform: kms:DescribeKey on resource: "
                           f"{key['Arn']} because no identity-based policy allows the kms:DescribeKey action")
    allowed = client_for(server, make_user(KMS_ALL))
    blob = allowed.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert allowed.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_policy_not_delegating_denies_iam_user_even_with_kms_star(server: Server, make_user: Any) -> None:
    kms = server.client("kms")
    named = make_user()  # no identity policy at all
    other = make_user(KMS_ALL)
    with pytest.raises(ClientError) as exc:  # the lockout safety check protects root from itself
        kms.create_key(Policy=naming_only(named.arn))
    assert exc.value.response["Error"]["Code"] == "MalformedPolicyDocumentException"
    key = kms.create_key(Policy=naming_only(named.arn), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]

    with pytest.raises(ClientError) as exc:
        client_for(server, other).encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert denied(exc) == (f"User: {other.arn} is not authorized to perform: kms:Encrypt on resource: "
                           f"{key['Arn']} because no resource-based policy allows the kms:Encrypt action")
    # The principal the key policy names needs no identity policy.
    mine = client_for(server, named)
    blob = mine.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert mine.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    # Not even the account root may use or manage a key whose policy does not name the account.
    with pytest.raises(ClientError) as exc:
        kms.describe_key(KeyId=key["KeyId"])
    assert denied(exc).endswith("because no resource-based policy allows the kms:DescribeKey action")
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob)
    assert f"kms:Decrypt on resource: {key['Arn']}" in denied(exc)


def test_explicit_deny_in_identity_policy_wins(server: Server, make_user: Any) -> None:
    kms = server.client("kms")
    user = make_user()
    key = kms.create_key(Policy=naming_only(user.arn), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    server.client("iam").put_user_policy(UserName=user.name, PolicyName="deny", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "kms:Encrypt", "Resource": key["Arn"]}]}))
    with pytest.raises(ClientError) as exc:
        client_for(server, user).encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert denied(exc).endswith("with an explicit deny in an identity-based policy")


def test_alias_is_authorized_on_the_key_it_names(server: Server, make_user: Any) -> None:
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName=f"alias/scoped-{key['KeyId'][:8]}", TargetKeyId=key["KeyId"])
    user = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": key["Arn"],
         "Condition": {"StringEquals": {"kms:EncryptionContext:app": "orders"}}}]})
    c = client_for(server, user)
    blob = c.encrypt(KeyId=f"alias/scoped-{key['KeyId'][:8]}", Plaintext=b"x",
                     EncryptionContext={"app": "orders"})["CiphertextBlob"]
    # Decrypt carries no KeyId: it is authorized on the key the ciphertext names.
    assert c.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "orders"})["Plaintext"] == b"x"
    with pytest.raises(ClientError) as exc:
        c.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"app": "billing"})
    denied(exc)


def test_grant_lets_grantee_use_the_key(server: Server, make_user: Any) -> None:
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]
    user = make_user()
    c = client_for(server, user)
    with pytest.raises(ClientError) as exc:
        c.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    denied(exc)
    grant = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn,
                             Operations=["GenerateDataKey", "Decrypt", "RetireGrant"])
    dk = c.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    assert c.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    c.retire_grant(KeyId=key["KeyId"], GrantId=grant["GrantId"])  # the grantee may retire it
    with pytest.raises(ClientError) as exc:
        c.decrypt(CiphertextBlob=dk["CiphertextBlob"])
    denied(exc)
