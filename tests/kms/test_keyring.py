"""The Keyring on its own (a Store in tmp_path): resolution, AWS managed keys, real cryptography,
key material sealed at rest, and the key-policy evaluation other services rely on."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auroral.api.context import Principal, RequestContext
from auroral.crypto import Sealer
from auroral.errors import AccessDenied, AwsError
from auroral.iam.authorizer import IamAuthorizer
from auroral.iam.directory import Directory
from auroral.kms.keyring import Keyring
from auroral.kms.policy import default_key_policy
from auroral.store import Store

ACCOUNT = "111122223333"
REGION = "us-east-1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "auroral.db")
    yield s
    s.close()


@pytest.fixture
def iam(store: Store) -> IamAuthorizer:
    return IamAuthorizer(Directory(store, Sealer(os.urandom(32)), ACCOUNT))


@pytest.fixture
def keyring(store: Store, iam: IamAuthorizer, clock: Clock) -> Keyring:
    return Keyring(store, Sealer(os.urandom(32)), REGION, iam, clock=clock)


def ctx_for(iam: IamAuthorizer, principal: Principal) -> RequestContext:
    return RequestContext(
        request_id="r", service="secretsmanager", operation="GetSecretValue", region=REGION,
        principal=principal, source_ip="127.0.0.1", user_agent="test", secure_transport=True,
        time=dt.datetime.now(dt.UTC), params={}, authorizer=iam,
    )


def user(name: str = "alice") -> Principal:
    return Principal(account=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:user/{name}", kind="user",
                     user_id="AIDAEXAMPLE" + name.upper(), name=name)


def root() -> Principal:
    return Principal(account=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:root", kind="root", user_id=ACCOUNT,
                     name="root")


def test_managed_alias_creates_aws_managed_key_on_first_resolve(keyring: Keyring) -> None:
    assert keyring.records.aliases(ACCOUNT) == []
    ref = keyring.resolve(ACCOUNT, None, default_alias="alias/aws/secretsmanager")
    meta = keyring.describe(ACCOUNT, ref.key_id)
    assert meta["KeyManager"] == "AWS" and meta["KeyState"] == "Enabled" and meta["Arn"] == ref.arn
    assert [a.name for a in keyring.records.aliases(ACCOUNT)] == ["alias/aws/secretsmanager"]
    # Resolving again, by name or ARN, finds the same key.
    assert keyring.resolve(ACCOUNT, "alias/aws/secretsmanager") == ref
    assert keyring.resolve(ACCOUNT, f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/secretsmanager") == ref
    policy = json.loads(keyring.record(ref).policy)
    assert policy["Id"] == "auto-secretsmanager-2"


def test_resolve_forms_and_not_found_messages(keyring: Keyring) -> None:
    rec = keyring.create_key(ACCOUNT, policy=default_key_policy(ACCOUNT))
    assert keyring.resolve(ACCOUNT, rec.key_id) == rec.ref
    assert keyring.resolve(ACCOUNT, rec.arn) == rec.ref
    missing = "11111111-2222-3333-4444-555555555555"
    with pytest.raises(AwsError) as err:
        keyring.resolve(ACCOUNT, missing)
    assert (err.value.code, err.value.message) == (
        "NotFoundException", f"Key 'arn:aws:kms:{REGION}:{ACCOUNT}:key/{missing}' does not exist")
    with pytest.raises(AwsError) as err:
        keyring.resolve(ACCOUNT, "alias/nope")
    assert err.value.message == f"Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/nope is not found."


def test_encrypt_decrypt_roundtrip_and_context_binding(keyring: Keyring) -> None:
    ref = keyring.create_key(ACCOUNT, policy=default_key_policy(ACCOUNT)).ref
    blob = keyring.encrypt(ref, b"hello", {"b": "2", "a": "1"})
    plaintext, found = keyring.decrypt(ACCOUNT, blob, {"a": "1", "b": "2"})  # order does not matter
    assert (plaintext, found) == (b"hello", ref)
    for wrong in ({"a": "1"}, {"a": "1", "b": "3"}, None):
        with pytest.raises(AwsError) as err:
            keyring.decrypt(ACCOUNT, blob, wrong)
        assert err.value.code == "InvalidCiphertextException"
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(AwsError, match="InvalidCiphertextException"):
        keyring.decrypt(ACCOUNT, bytes(tampered), {"a": "1", "b": "2"})


def test_data_key_is_a_usable_aes_key(keyring: Keyring) -> None:
    ref = keyring.create_key(ACCOUNT, policy=default_key_policy(ACCOUNT)).ref
    plaintext, blob = keyring.generate_data_key(ref, {"purpose": "test"})
    assert len(plaintext) == 32
    nonce = os.urandom(12)
    sealed = AESGCM(plaintext).encrypt(nonce, b"payload", None)
    again, _ = keyring.decrypt(ACCOUNT, blob, {"purpose": "test"})
    assert AESGCM(again).decrypt(nonce, sealed, None) == b"payload"


def test_disabled_and_pending_deletion_keys_refuse_to_work(keyring: Keyring, clock: Clock) -> None:
    rec = keyring.create_key(ACCOUNT, policy=default_key_policy(ACCOUNT))
    blob = keyring.encrypt(rec.ref, b"x", None)
    rec.state = "Disabled"
    keyring.records.put_key(rec)
    with pytest.raises(AwsError) as err:
        keyring.decrypt(ACCOUNT, blob, None)
    assert (err.value.code, err.value.message) == ("DisabledException", f"{rec.arn} is disabled.")
    rec.state, rec.deletion_date, rec.pending_window = "PendingDeletion", clock.now + 7 * 86400, 7
    keyring.records.put_key(rec)
    with pytest.raises(AwsError) as err:
        keyring.generate_data_key(rec.ref, None)
    assert (err.value.code, err.value.message) == ("KMSInvalidStateException", f"{rec.arn} is pending deletion.")
    clock.now += 7 * 86400 + 1  # the waiting period is over: the key no longer exists
    with pytest.raises(AwsError, match="NotFoundException"):
        keyring.resolve(ACCOUNT, rec.key_id)
    with pytest.raises(AccessDenied, match="The ciphertext refers to a customer master key"):
        keyring.decrypt(ACCOUNT, blob, None)
    assert keyring.purge_expired() == 1
    assert keyring.records.store.get("kms-key", ACCOUNT, rec.key_id) is None


def test_key_material_is_not_stored_in_plaintext(keyring: Keyring, store: Store) -> None:
    rec = keyring.create_key(ACCOUNT, policy=default_key_policy(ACCOUNT))
    material = keyring._sealer.open(rec.material, f"kms:key-material:{rec.arn}".encode())
    assert len(material) == 32
    store.close()
    raw = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.name.startswith(store.path.name))
    assert rec.key_id.encode() in raw  # the file is the right one...
    assert material not in raw  # ...and the key itself is only there sealed
    assert material.hex().encode() not in raw
    import base64

    assert base64.b64encode(material) not in raw


def test_sealed_material_is_bound_to_its_key(keyring: Keyring) -> None:
    a = keyring.create_key(ACCOUNT, policy=default_key_policy(ACCOUNT))
    b = keyring.create_key(ACCOUNT, policy=default_key_policy(ACCOUNT))
    b.material = a.material  # copying one key's sealed material into another row must not work
    keyring.records.put_key(b)
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        keyring.encrypt(b.ref, b"x", None)


def test_check_via_service_on_aws_managed_key(keyring: Keyring, iam: IamAuthorizer) -> None:
    ref = keyring.resolve(ACCOUNT, None, default_alias="alias/aws/secretsmanager")
    ctx = ctx_for(iam, user())
    # Through Secrets Manager, any principal of the account may use the key (no IAM kms permission needed)...
    keyring.check(ctx, "kms:Decrypt", ref, via_service="secretsmanager", encryption_context={"k": "v"})
    keyring.check(ctx, "kms:GenerateDataKey", ref, via_service="secretsmanager")
    # ...but not directly, nor through another service.
    with pytest.raises(AccessDenied) as err:
        keyring.check(ctx, "kms:Decrypt", ref)
    assert err.value.message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: kms:Decrypt on resource: "
        f"{ref.arn} because no resource-based policy allows the kms:Decrypt action")
    with pytest.raises(AccessDenied):
        keyring.check(ctx, "kms:Decrypt", ref, via_service="rds")
    # DescribeKey is delegated to the account: root may, a user without an identity policy may not.
    keyring.check(ctx_for(iam, root()), "kms:DescribeKey", ref)
    with pytest.raises(AccessDenied, match="because no identity-based policy allows the kms:DescribeKey action"):
        keyring.check(ctx, "kms:DescribeKey", ref)


def test_key_policy_deny_and_direct_grant(keyring: Keyring, iam: IamAuthorizer) -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "Alice", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"},
         "Action": "kms:Encrypt", "Resource": "*"},
        {"Sid": "NoDecrypt", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt",
         "Resource": "*", "Condition": {"StringNotEquals": {"kms:EncryptionContext:team": "blue"}}},
    ]})
    ref = keyring.create_key(ACCOUNT, policy=policy).ref
    keyring.check(ctx_for(iam, user("alice")), "kms:Encrypt", ref)  # named directly: no IAM policy needed
    with pytest.raises(AccessDenied, match="no identity-based policy"):
        keyring.check(ctx_for(iam, user("bob")), "kms:Encrypt", ref)
    with pytest.raises(AccessDenied, match="with an explicit deny in a resource-based policy"):
        keyring.check(ctx_for(iam, root()), "kms:Decrypt", ref, encryption_context={"team": "red"})
    keyring.check(ctx_for(iam, root()), "kms:Decrypt", ref, encryption_context={"team": "blue"})


def test_grants_allow_their_grantee(keyring: Keyring, iam: IamAuthorizer) -> None:
    from auroral.kms.model import GrantRecord

    rec = keyring.create_key(ACCOUNT, policy=default_key_policy(ACCOUNT))
    ctx = ctx_for(iam, user("carol"))
    with pytest.raises(AccessDenied):
        keyring.check(ctx, "kms:Decrypt", rec.ref, encryption_context={"a": "1"})
    keyring.records.put_grant(GrantRecord(
        account=ACCOUNT, grant_id="g" * 64, key_id=rec.key_id, key_arn=rec.arn, grantee=ctx.principal.arn,
        operations=["Decrypt"], created=0.0, token="t",
        constraints={"EncryptionContextSubset": {"a": "1"}},
    ))
    keyring.check(ctx, "kms:Decrypt", rec.ref, encryption_context={"a": "1", "b": "2"})
    with pytest.raises(AccessDenied):
        keyring.check(ctx, "kms:Decrypt", rec.ref, encryption_context={"a": "2"})
    with pytest.raises(AccessDenied):
        keyring.check(ctx, "kms:Encrypt", rec.ref, encryption_context={"a": "1"})
