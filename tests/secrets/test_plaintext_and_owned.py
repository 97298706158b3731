"""Nothing in plaintext (a dedicated server's data directory and log are grepped for every value it
stored), and secrets another service owns refusing direct changes through the API."""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auroral.api.context import Principal, RequestContext
from auroral.crypto import Sealer
from auroral.errors import AwsError
from auroral.iam.authorizer import IamAuthorizer
from auroral.iam.directory import Directory
from auroral.kms.keyring import Keyring
from auroral.secrets.service import SecretsManagerService
from auroral.store import Store
from tests.conftest import new_root_key, server_tmpdir, start_server, stop_server

ACCOUNT = "111122223333"
POLICY = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "111122223333"}, '
          '"Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}')


def test_no_secret_value_in_data_dir_or_log() -> None:
    key, secret = new_root_key()
    base = server_tmpdir()
    srv = start_server(base / "data", access_key=key, secret_key=secret, account="123456789012")
    values = [f"plain-{secrets.token_hex(12)}" for _ in range(4)]
    binary = secrets.token_bytes(24)
    try:
        sm = srv.client("secretsmanager")
        sm.create_secret(Name="p/one", SecretString=values[0])
        sm.put_secret_value(SecretId="p/one", SecretString=values[1])
        sm.update_secret(SecretId="p/one", SecretString=values[2])
        sm.create_secret(Name="p/two", SecretBinary=binary)
        sm.create_secret(Name="p/three", SecretString=f'{{"password": "{values[3]}"}}')
        for name in ("p/one", "p/two", "p/three"):
            sm.get_secret_value(SecretId=name)
        sm.batch_get_secret_value(SecretIdList=["p/one", "p/two"])
        with pytest.raises(Exception):  # noqa: B017 - the value must not be echoed in the error either
            sm.put_secret_value(SecretId="p/one", SecretString=values[0], SecretBinary=b"x")
        srv.client("cloudtrail").lookup_events()
    finally:
        stop_server(srv)
    try:
        needles = [v.encode() for v in values] + [binary, base64.b64encode(binary)]
        assert srv.log_path is not None
        files = [p for p in base.rglob("*") if p.is_file() and not p.is_symlink()]
        if srv.log_path not in files:
            files.append(srv.log_path)
        assert any(p.name == "auroral.sqlite3" for p in files)  # the store is among what is searched
        for path in files:
            try:
                data = path.read_bytes()
            except (PermissionError, OSError):
                continue
            for needle in needles:
                assert needle not in data, f"secret value found in {path}"
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- secrets owned by another service ------------------------------------------------------


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[SecretsManagerService, RequestContext]]:
    store = Store(tmp_path / "auroral.db")
    sealer = Sealer(os.urandom(32))
    iam = IamAuthorizer(Directory(store, sealer, ACCOUNT))
    svc = SecretsManagerService(store, Keyring(store, sealer, "us-east-1", iam), "us-east-1")
    ctx = RequestContext(
        request_id="r", service="secretsmanager", operation="x", region="us-east-1",
        principal=Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", "root", ACCOUNT, "root"),
        source_ip="127.0.0.1", user_agent="t", secure_transport=True, time=dt.datetime.now(dt.UTC), params={},
        authorizer=iam)
    yield svc, ctx
    store.close()


def test_rds_owned_secret_refuses_direct_changes(service: tuple[SecretsManagerService, RequestContext]) -> None:
    svc, ctx = service
    owned = svc.vault.create_managed_secret(
        ctx, name="rds!cluster-abc", owning_service="rds", description="Secret associated with primary RDS DB "
        "cluster: arn:aws:rds:us-east-1:111122223333:cluster:c", tags={"aws:secretsmanager:owningService": "rds"},
        value={"username": "admin", "password": "pw"}, kms_key_id=None)
    arn = owned.arn
    refused: list[tuple[str, dict[str, Any]]] = [
        ("PutSecretValue", {"SecretId": arn, "SecretString": "x"}),
        ("UpdateSecret", {"SecretId": arn, "SecretString": "x"}),
        ("UpdateSecret", {"SecretId": arn, "KmsKeyId": "alias/aws/secretsmanager"}),
        ("DeleteSecret", {"SecretId": arn}),
        ("UpdateSecretVersionStage", {"SecretId": arn, "VersionStage": "X", "MoveToVersionId": owned.version_id}),
        ("PutResourcePolicy", {"SecretId": arn, "ResourcePolicy": POLICY}),
        ("DeleteResourcePolicy", {"SecretId": arn}),
        ("RotateSecret", {"SecretId": arn, "RotationLambdaARN": "arn:aws:lambda:us-east-1:111122223333:function:f"}),
        ("CancelRotateSecret", {"SecretId": arn}),
    ]
    for op, params in refused:
        with pytest.raises(AwsError) as err:
            getattr(svc, op)(ctx, params)
        assert err.value.code == "InvalidRequestException", op
        assert err.value.message == f"You can't modify secret {arn} because it's managed by rds.", op
    got = svc.GetSecretValue(ctx, {"SecretId": arn})
    assert got["SecretString"] == '{"username":"admin","password":"pw"}'
    desc = svc.DescribeSecret(ctx, {"SecretId": arn})
    assert desc["OwningService"] == "rds" and "KmsKeyId" not in desc
    svc.UpdateSecret(ctx, {"SecretId": arn, "Description": "still allowed"})
    svc.TagResource(ctx, {"SecretId": arn, "Tags": [{"Key": "team", "Value": "db"}]})
