"""Attacks on KMS grants through the running server (adversarial review, second pass).

"Principals who get permission to create grants from a grant are limited in the grants that they can
create" (KMS developer guide, "Granting CreateGrant permission"): the operations of the new grant must
be among the parent grant's, and a parent's encryption context constraint must be at least as strict in
the new grant. Otherwise a grant of ``[Encrypt, CreateGrant]`` (what services are often given) makes
its grantee a grant of ``Decrypt`` — everything the key protects.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, UserKeys


def _kms(server: Server, user: UserKeys) -> Any:
    return server.client("kms", access_key=user.access_key, secret_key=user.secret_key)


def _denied(call: Any, **kwargs: Any) -> None:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    assert info.value.response["Error"]["Code"] == "AccessDeniedException", info.value.response


def test_a_grant_to_create_grants_does_not_grant_more(server: Server, make_user: Any) -> None:
    kms = server.client("kms")
    key = kms.create_key(Description="grants")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
    grantee = make_user()  # no identity policy: only the grant
    kms.create_grant(KeyId=key, GranteePrincipal=grantee.arn, Operations=["Encrypt", "CreateGrant"])
    attacker = _kms(server, grantee)
    _denied(attacker.decrypt, CiphertextBlob=blob)
    _denied(attacker.create_grant, KeyId=key, GranteePrincipal=grantee.arn, Operations=["Decrypt"])
    _denied(attacker.create_grant, KeyId=key, GranteePrincipal=grantee.arn, Operations=["Encrypt", "ReEncryptFrom"])
    _denied(attacker.decrypt, CiphertextBlob=blob)
    # what the parent grant holds it may pass on
    attacker.create_grant(KeyId=key, GranteePrincipal=grantee.arn, Operations=["Encrypt"])
    attacker.encrypt(KeyId=key, Plaintext=b"x")


def test_constraints_of_the_parent_grant_bind_the_grants_it_creates(server: Server, make_user: Any) -> None:
    kms = server.client("kms")
    key = kms.create_key(Description="constrained grants")["KeyMetadata"]["KeyId"]
    orders = {"app": "orders"}
    mine = kms.encrypt(KeyId=key, Plaintext=b"order", EncryptionContext=orders)["CiphertextBlob"]
    other = kms.encrypt(KeyId=key, Plaintext=b"payroll", EncryptionContext={"app": "payroll"})["CiphertextBlob"]
    grantee = make_user()
    kms.create_grant(KeyId=key, GranteePrincipal=grantee.arn, Operations=["Decrypt", "CreateGrant"],
                     Constraints={"EncryptionContextSubset": orders})
    attacker = _kms(server, grantee)
    # the grant works within its constraint, through the API
    assert attacker.decrypt(CiphertextBlob=mine, EncryptionContext=orders)["Plaintext"] == b"order"
    _denied(attacker.decrypt, CiphertextBlob=other, EncryptionContext={"app": "payroll"})
    # a grant without the constraint, or a looser one, is not the parent's to create
    _denied(attacker.create_grant, KeyId=key, GranteePrincipal=grantee.arn, Operations=["Decrypt"])
    _denied(attacker.create_grant, KeyId=key, GranteePrincipal=grantee.arn, Operations=["Decrypt"],
            Constraints={"EncryptionContextSubset": {"team": "x"}})
    _denied(attacker.decrypt, CiphertextBlob=other, EncryptionContext={"app": "payroll"})
    # a stricter one is
    attacker.create_grant(KeyId=key, GranteePrincipal=grantee.arn, Operations=["Decrypt"],
                          Constraints={"EncryptionContextEquals": {"app": "orders", "region": "eu"}})


def test_a_tag_based_deny_holds_wherever_the_key_is_used(server: Server, make_user: Any) -> None:
    """aws:ResourceTag/* of a KMS key is in the context of every decision on it: Decrypt and ReEncrypt
    (which name the key only through the ciphertext), the alias operations (on the key an alias points
    from and to), and the calls Secrets Manager makes on the caller's behalf."""
    kms, sm = server.client("kms"), server.client("secretsmanager")
    prod = kms.create_key(Description="prod", Tags=[{"TagKey": "env", "TagValue": "prod"}])["KeyMetadata"]
    mine = kms.create_key(Description="mine")["KeyMetadata"]
    alias = f"alias/app-{prod['KeyId'][:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=prod["KeyId"])
    blob = kms.encrypt(KeyId=prod["KeyId"], Plaintext=b"prod data")["CiphertextBlob"]
    secret = sm.create_secret(Name=f"prod-{prod['KeyId'][:8]}", SecretString="prod password",
                              KmsKeyId=prod["Arn"])["ARN"]
    user = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:*", "secretsmanager:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "kms:*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/env": "prod"}}}]})
    attacker = _kms(server, user)
    _denied(attacker.encrypt, KeyId=prod["KeyId"], Plaintext=b"x")  # held before: the baseline
    _denied(attacker.decrypt, CiphertextBlob=blob)
    _denied(attacker.re_encrypt, CiphertextBlob=blob, DestinationKeyId=mine["KeyId"])
    own = attacker.encrypt(KeyId=mine["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    _denied(attacker.re_encrypt, CiphertextBlob=own, DestinationKeyId=prod["KeyId"])
    # the alias the application encrypts with cannot be pointed at the attacker's key
    _denied(attacker.update_alias, AliasName=alias, TargetKeyId=mine["KeyId"])
    _denied(attacker.delete_alias, AliasName=alias)
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == prod["KeyId"]
    # nor does Secrets Manager decrypt with it for the caller
    attacker_sm = server.client("secretsmanager", user.access_key, user.secret_key)
    with pytest.raises(ClientError) as info:
        attacker_sm.get_secret_value(SecretId=secret)
    assert info.value.response["Error"]["Code"] == "AccessDeniedException", info.value.response
    sm.delete_secret(SecretId=secret, ForceDeleteWithoutRecovery=True)


def test_a_deny_by_resource_alias_holds(server: Server, make_user: Any) -> None:
    """kms:ResourceAliases (the aliases of the key a request uses) is in the context: a Deny on keys
    aliased alias/prod-* holds for Decrypt by ciphertext and for Encrypt by key id."""
    kms = server.client("kms")
    key = kms.create_key(Description="aliased")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/prod-{key[:8]}", TargetKeyId=key)
    blob = kms.encrypt(KeyId=key, Plaintext=b"prod data")["CiphertextBlob"]
    user = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": "*",
         "Condition": {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/prod-*"}}}]})
    attacker = _kms(server, user)
    _denied(attacker.decrypt, CiphertextBlob=blob)
    _denied(attacker.encrypt, KeyId=key, Plaintext=b"x")
    attacker.describe_key(KeyId=key)


def test_a_grant_name_does_not_hand_out_another_grant(server: Server, make_user: Any) -> None:
    """CreateGrant with a Name returns the existing grant only for a retry with identical parameters:
    the same name with another grantee or other operations is a new grant, never the existing grant's
    id and token."""
    kms = server.client("kms")
    key = kms.create_key(Description="named grants")["KeyMetadata"]["KeyId"]
    app, other = make_user(), make_user()
    first = kms.create_grant(KeyId=key, GranteePrincipal=app.arn, Operations=["Decrypt"], Name="app")
    assert kms.create_grant(KeyId=key, GranteePrincipal=app.arn, Operations=["Decrypt"],
                            Name="app")["GrantId"] == first["GrantId"]
    taken = kms.create_grant(KeyId=key, GranteePrincipal=other.arn, Operations=["Encrypt"], Name="app")
    assert taken["GrantId"] != first["GrantId"] and taken["GrantToken"] != first["GrantToken"]
    grants = kms.list_grants(KeyId=key)["Grants"]
    assert sorted((g["GranteePrincipal"], tuple(g["Operations"])) for g in grants) == sorted(
        [(app.arn, ("Decrypt",)), (other.arn, ("Encrypt",))])
