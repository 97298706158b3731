"""KMS end to end with unmodified boto3 against the session server (account root)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.conftest import Server, unique


@pytest.fixture(scope="module")
def kms(server: Server) -> Any:
    return server.client("kms")


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_create_describe_list(kms: Any, server: Server) -> None:
    meta = kms.create_key(Description="orders", Tags=[{"TagKey": "team", "TagValue": "blue"}])["KeyMetadata"]
    assert meta["Arn"] == f"arn:aws:kms:{server.region}:{server.account}:key/{meta['KeyId']}"
    assert (meta["KeyState"], meta["Enabled"], meta["KeyManager"], meta["KeySpec"], meta["KeyUsage"]) == (
        "Enabled", True, "CUSTOMER", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"] and meta["Origin"] == "AWS_KMS"
    assert meta["MultiRegion"] is False and meta["Description"] == "orders"
    described = kms.describe_key(KeyId=meta["Arn"])["KeyMetadata"]
    assert described["KeyId"] == meta["KeyId"] and described["CreationDate"] == meta["CreationDate"]
    keys = [k["KeyId"] for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1})
            for k in page["Keys"]]
    assert meta["KeyId"] in keys
    assert kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"] == [{"TagKey": "team", "TagValue": "blue"}]
    kms.untag_resource(KeyId=meta["KeyId"], TagKeys=["team"])
    assert kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"] == []
    policy = kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"]
    assert f"arn:aws:iam::{server.account}:root" in policy and '"kms:*"' in policy


def test_unknown_key_and_alias_messages(kms: Any, server: Server) -> None:
    missing = "11111111-2222-3333-4444-555555555555"
    with pytest.raises(ClientError) as exc:
        kms.describe_key(KeyId=missing)
    assert error_of(exc) == (
        "NotFoundException", f"Key 'arn:aws:kms:{server.region}:{server.account}:key/{missing}' does not exist", 400)
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId="alias/does-not-exist", Plaintext=b"x")
    assert error_of(exc)[:2] == (
        "NotFoundException", f"Alias arn:aws:kms:{server.region}:{server.account}:alias/does-not-exist is not found.")


def test_encrypt_decrypt_roundtrip_and_context(kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    out = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret data", EncryptionContext={"app": "orders"})
    assert out["KeyId"] == key["Arn"] and out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert b"secret data" not in out["CiphertextBlob"]
    # No KeyId: the ciphertext blob names its key.
    back = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"app": "orders"})
    assert (back["Plaintext"], back["KeyId"]) == (b"secret data", key["Arn"])
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"app": "billing"})
    assert error_of(exc)[0] == "InvalidCiphertextException"
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=out["CiphertextBlob"])
    assert error_of(exc)[0] == "InvalidCiphertextException"
    other = kms.create_key()["KeyMetadata"]
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=out["CiphertextBlob"], KeyId=other["KeyId"], EncryptionContext={"app": "orders"})
    assert error_of(exc)[0] == "IncorrectKeyException"
    moved = kms.re_encrypt(CiphertextBlob=out["CiphertextBlob"], SourceEncryptionContext={"app": "orders"},
                           DestinationKeyId=other["KeyId"])
    assert (moved["SourceKeyId"], moved["KeyId"]) == (key["Arn"], other["Arn"])
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == b"secret data"


def test_generate_data_key_is_usable_with_aes_gcm(kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    dk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256", EncryptionContext={"f": "1"})
    assert len(dk["Plaintext"]) == 32 and dk["KeyId"] == key["Arn"]
    nonce = os.urandom(12)
    sealed = AESGCM(dk["Plaintext"]).encrypt(nonce, b"file contents", None)
    recovered = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"f": "1"})["Plaintext"]
    assert AESGCM(recovered).decrypt(nonce, sealed, None) == b"file contents"
    assert len(kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_128")["Plaintext"]) == 16
    assert len(kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=64)["Plaintext"]) == 64
    no_plain = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], KeySpec="AES_256")
    assert "Plaintext" not in no_plain
    assert len(kms.decrypt(CiphertextBlob=no_plain["CiphertextBlob"])["Plaintext"]) == 32
    with pytest.raises(ClientError) as exc:
        kms.generate_data_key(KeyId=key["KeyId"])
    assert error_of(exc)[0] == "ValidationException"
    assert len(kms.generate_random(NumberOfBytes=48)["Plaintext"]) == 48


def test_aliases(kms: Any, server: Server) -> None:
    a = kms.create_key()["KeyMetadata"]
    b = kms.create_key()["KeyMetadata"]
    name = f"alias/{unique('orders')}"
    kms.create_alias(AliasName=name, TargetKeyId=a["KeyId"])
    entry = next(x for x in kms.list_aliases()["Aliases"] if x["AliasName"] == name)
    assert entry["TargetKeyId"] == a["KeyId"]
    assert entry["AliasArn"] == f"arn:aws:kms:{server.region}:{server.account}:{name}"
    assert [x["AliasName"] for x in kms.list_aliases(KeyId=a["KeyId"])["Aliases"]] == [name]
    assert kms.encrypt(KeyId=name, Plaintext=b"x")["KeyId"] == a["Arn"]
    assert kms.describe_key(KeyId=entry["AliasArn"])["KeyMetadata"]["KeyId"] == a["KeyId"]
    with pytest.raises(ClientError) as exc:
        kms.create_alias(AliasName=name, TargetKeyId=b["KeyId"])
    assert error_of(exc)[:2] == ("AlreadyExistsException", f"An alias with the name {entry['AliasArn']} already exists")
    kms.update_alias(AliasName=name, TargetKeyId=b["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == b["KeyId"]
    with pytest.raises(ClientError) as exc:
        kms.create_alias(AliasName="alias/aws/mine", TargetKeyId=a["KeyId"])
    assert error_of(exc)[0] == "NotAuthorizedException"
    with pytest.raises(ClientError) as exc:
        kms.create_alias(AliasName="no-prefix", TargetKeyId=a["KeyId"])
    assert error_of(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        kms.create_alias(AliasName=f"alias/{unique('x')}", TargetKeyId=name)
    assert error_of(exc)[0] == "ValidationException"
    kms.delete_alias(AliasName=name)
    assert name not in [x["AliasName"] for x in kms.list_aliases()["Aliases"]]
    with pytest.raises(ClientError) as exc:
        kms.delete_alias(AliasName=name)
    assert error_of(exc)[0] == "NotFoundException"


def test_aws_managed_key_created_on_first_use(kms: Any, server: Server) -> None:
    before = {x["AliasName"]: x for x in kms.list_aliases()["Aliases"]}
    # Predefined aliases are listed before their key exists, without a target (ListAliases reference).
    assert "TargetKeyId" not in before["alias/aws/rds"]
    meta = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]
    assert meta["KeyManager"] == "AWS"
    after = {x["AliasName"]: x for x in kms.list_aliases()["Aliases"]}
    assert after["alias/aws/rds"]["TargetKeyId"] == meta["KeyId"]
    assert kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]["KeyId"] == meta["KeyId"]
    # Its policy allows use only through RDS: not even root may encrypt with it directly.
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId="alias/aws/rds", Plaintext=b"x")
    code, message, status = error_of(exc)
    assert (code, status) == ("AccessDeniedException", 400)
    assert message == (f"User: arn:aws:iam::{server.account}:root is not authorized to perform: kms:Encrypt on "
                       f"resource: {meta['Arn']} because no resource-based policy allows the kms:Encrypt action")
    with pytest.raises(ClientError) as exc:
        kms.disable_key(KeyId=meta["KeyId"])
    assert error_of(exc)[0] == "AccessDeniedException"


def test_key_states(kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]
    arn = key["Arn"]
    blob = kms.encrypt(KeyId=arn, Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=arn)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=arn, Plaintext=b"x")
    assert error_of(exc) == ("DisabledException", f"{arn} is disabled.", 400)
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob)
    assert error_of(exc)[0] == "DisabledException"
    kms.enable_key(KeyId=arn)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"

    with pytest.raises(ClientError) as exc:
        kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=5)
    assert error_of(exc)[0] == "ValidationException"
    scheduled = kms.schedule_key_deletion(KeyId=arn)
    assert (scheduled["KeyId"], scheduled["KeyState"], scheduled["PendingWindowInDays"]) == (
        arn, "PendingDeletion", 30)
    meta = kms.describe_key(KeyId=arn)["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion" and meta["Enabled"] is False
    assert 29.9 < (meta["DeletionDate"] - meta["CreationDate"]).total_seconds() / 86400 < 30.1
    for call in (lambda: kms.decrypt(CiphertextBlob=blob), lambda: kms.encrypt(KeyId=arn, Plaintext=b"x"),
                 lambda: kms.enable_key(KeyId=arn), lambda: kms.schedule_key_deletion(KeyId=arn)):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("KMSInvalidStateException", f"{arn} is pending deletion.", 400)
    assert kms.cancel_key_deletion(KeyId=arn)["KeyId"] == arn
    meta = kms.describe_key(KeyId=arn)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled" and "DeletionDate" not in meta
    kms.enable_key(KeyId=arn)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_grants(kms: Any, server: Server) -> None:
    key = kms.create_key()["KeyMetadata"]
    grantee = f"arn:aws:iam::{server.account}:role/app"
    g1 = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee, Operations=["Decrypt", "Encrypt"],
                          RetiringPrincipal=f"arn:aws:iam::{server.account}:root", Name="g1",
                          Constraints={"EncryptionContextSubset": {"app": "orders"}})
    again = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee, Operations=["Decrypt", "Encrypt"],
                             RetiringPrincipal=f"arn:aws:iam::{server.account}:root", Name="g1",
                             Constraints={"EncryptionContextSubset": {"app": "orders"}})
    # a named grant is idempotent for a retry "with identical parameters" (CreateGrant API reference, Name);
    # the same name with other parameters is another grant
    assert again["GrantId"] == g1["GrantId"]
    other = kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee, Operations=["Decrypt"], Name="g1")
    assert other["GrantId"] != g1["GrantId"]
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=other["GrantId"])
    g2 = kms.create_grant(KeyId=key["Arn"], GranteePrincipal=grantee, Operations=["GenerateDataKey"])
    grants = kms.list_grants(KeyId=key["KeyId"])["Grants"]
    assert {g["GrantId"] for g in grants} == {g1["GrantId"], g2["GrantId"]}
    first = next(g for g in grants if g["GrantId"] == g1["GrantId"])
    assert first["KeyId"] == key["Arn"] and first["Operations"] == ["Decrypt", "Encrypt"]
    assert first["Constraints"] == {"EncryptionContextSubset": {"app": "orders"}}
    assert first["IssuingAccount"] == f"arn:aws:iam::{server.account}:root" and first["Name"] == "g1"
    kms.retire_grant(GrantToken=g1["GrantToken"])
    kms.revoke_grant(KeyId=key["KeyId"], GrantId=g2["GrantId"])
    assert kms.list_grants(KeyId=key["KeyId"])["Grants"] == []
    with pytest.raises(ClientError) as exc:
        kms.revoke_grant(KeyId=key["KeyId"], GrantId=g2["GrantId"])
    assert error_of(exc)[0] == "InvalidGrantIdException"


def test_put_key_policy_lockout_check(kms: Any, server: Server) -> None:
    key = kms.create_key()["KeyMetadata"]
    locked = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":'
              f'"arn:aws:iam::{server.account}:user/nobody"}},"Action":"kms:*","Resource":"*"}}]}}')
    with pytest.raises(ClientError) as exc:
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=locked)
    assert error_of(exc)[:2] == ("MalformedPolicyDocumentException",
                                 "The new key policy will not allow you to update the key policy in the future.")
    with pytest.raises(ClientError) as exc:
        kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy="{not json")
    assert error_of(exc)[0] == "MalformedPolicyDocumentException"
