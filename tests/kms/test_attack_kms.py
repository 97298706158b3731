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
