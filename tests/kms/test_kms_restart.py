"""Keys, aliases and ciphertexts survive a restart (a dedicated server, stopped and started again)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import new_root_key, start_server, stop_server


def test_keys_survive_restart(tmp_path: Path) -> None:
    access, secret = new_root_key()
    data = tmp_path / "data"
    server = start_server(data, access_key=access, secret_key=secret, account="210987654321")
    try:
        kms = server.client("kms")
        key = kms.create_key(Description="durable")["KeyMetadata"]
        kms.create_alias(AliasName="alias/durable", TargetKeyId=key["KeyId"])
        blob = kms.encrypt(KeyId="alias/durable", Plaintext=b"kept", EncryptionContext={"a": "b"})["CiphertextBlob"]
        kms.disable_key(KeyId=key["KeyId"])
        managed = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]["KeyId"]
    finally:
        stop_server(server)
    server = start_server(data, access_key=access, secret_key=secret, account="210987654321", port=None)
    try:
        kms = server.client("kms")
        meta = kms.describe_key(KeyId="alias/durable")["KeyMetadata"]
        assert (meta["KeyId"], meta["KeyState"], meta["Description"]) == (key["KeyId"], "Disabled", "durable")
        kms.enable_key(KeyId=key["KeyId"])
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})["Plaintext"] == b"kept"
        assert kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]["KeyId"] == managed
    finally:
        stop_server(server)
    raw = b"".join(p.read_bytes() for p in data.iterdir() if p.name.startswith("auroral.sqlite3"))
    assert key["KeyId"].encode() in raw and b"kept" not in raw
