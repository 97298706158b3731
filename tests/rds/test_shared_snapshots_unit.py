"""Snapshots shared with another account (rds/snapshots.py), seen from that account: DescribeDBClusterSnapshots
(IncludeShared / IncludePublic, SnapshotType shared / public, by the owner's ARN), RestoreDBClusterFromSnapshot
and CopyDBClusterSnapshot by the snapshot's ARN, DBClusterSnapshotNotFoundFault while it is not shared, and the
KMS rules: an encrypted one needs a key whose policy lets the other account use it (never the owner's aws/rds
key), and a copy of one names a key of the copier's own. Against the real store, the real KMS keyring with its
key policies, real sealed snapshot files, and a runtime whose "data" is bytes (no PostgreSQL here: the e2e
tests restore real data; one installation has one account, so the other account's calls are made here)."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auroral.api.context import Principal, RequestContext
from auroral.crypto import Sealer
from auroral.errors import AwsError
from auroral.iam.authorizer import IamAuthorizer
from auroral.iam.directory import Directory
from auroral.kms.keyring import Keyring
from auroral.kms.policy import default_key_policy
from auroral.rds.model import Cluster
from auroral.rds.service import RdsService
from auroral.rds.storage_keys import StorageKeys, slr_arn
from auroral.store import Store

from .conftest import PASSWORD, through_botocore
from .fakes import ACCOUNT, REGION, FakeAuthorizer, FakeDirectory, FakeRuntime

OTHER = "210987654321"
THIRD = "111122223333"


class BytesRuntime(FakeRuntime):
    """A cluster's "data" is bytes: a snapshot streams them, a restore receives them."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, bytes] = {}

    async def snapshot_cluster(self, cluster: Cluster, sink: Callable[[bytes], Any], *,
                               running_only: bool = False) -> None:
        await sink(self.data.setdefault(cluster.resource_id, f"rows of {cluster.identifier}".encode()))

    async def restore_cluster(self, cluster: Cluster, chunks: AsyncIterator[bytes], admin_password: str,
                              wal: Any = None, target_time: str | None = None) -> None:
        self.data[cluster.resource_id] = b"".join([c async for c in chunks])
        await self.create_cluster(cluster, "unused")

    def admin_password_of(self, cluster: Cluster) -> str:
        return "admin-password"

    def add_wal_listener(self, fn: Any) -> None:
        pass

    async def flush_wal(self, cluster: Cluster) -> bool:
        return False


class Accounts:
    def __init__(self, root: Path) -> None:
        self.store = Store(root / "store.db")
        sealer = Sealer(os.urandom(32))
        self.keyring = Keyring(self.store, sealer, REGION, IamAuthorizer(Directory(self.store, sealer, ACCOUNT)))
        self.runtime = BytesRuntime()
        self.service = RdsService(self.store, self.runtime, FakeDirectory(), REGION)
        self.service.settle_seconds = 0.0
        self.service.attach_snapshots(StorageKeys(self.keyring, sealer), root / "snapshots")

    async def call(self, account: str, operation: str, **params: Any) -> dict[str, Any]:
        result = getattr(self.service, operation)(ctx(account, operation, params), params)
        if hasattr(result, "__await__"):
            result = await result
        await self.service.drain()
        return through_botocore(operation, result or {})

    async def fails(self, account: str, operation: str, **params: Any) -> AwsError:
        with pytest.raises(AwsError) as info:
            await self.call(account, operation, **params)
        return info.value

    def key(self, account: str, *, users: tuple[str, ...] = ()) -> str:
        """A customer key of ``account`` whose policy lets the roots of ``users`` use it too."""
        policy = json.loads(default_key_policy(account))
        if users:
            policy["Statement"].append({
                "Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{u}:root" for u in users]},
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKey*",
                           "kms:ReEncrypt*", "kms:Encrypt"],
                "Resource": "*"})
        return self.keyring.create_key(account, policy=json.dumps(policy)).arn


def ctx(account: str, operation: str, params: dict[str, Any]) -> RequestContext:
    principal = Principal(account=account, arn=f"arn:aws:iam::{account}:root", kind="root", user_id=account,
                          name="root")
    return RequestContext(request_id="req-1", service="rds", operation=operation, region=REGION,
                          principal=principal, source_ip="127.0.0.1", user_agent="test", secure_transport=False,
                          time=dt.datetime.now(dt.UTC), params=params, authorizer=FakeAuthorizer())


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[Accounts]:
    env = Accounts(tmp_path)
    yield env
    env.store.close()


async def _snapshot(env: Accounts, cluster: str, name: str, **create: Any) -> str:
    await env.call(ACCOUNT, "CreateDBCluster", DBClusterIdentifier=cluster, Engine="aurora-postgresql",
                   EngineVersion="16.4", MasterUsername="master", MasterUserPassword=PASSWORD, **create)
    out = await env.call(ACCOUNT, "CreateDBClusterSnapshot", DBClusterIdentifier=cluster,
                         DBClusterSnapshotIdentifier=name)
    described = await env.call(ACCOUNT, "DescribeDBClusterSnapshots", DBClusterSnapshotIdentifier=name)
    assert described["DBClusterSnapshots"][0]["Status"] == "available"
    return str(out["DBClusterSnapshot"]["DBClusterSnapshotArn"])


def _ids(out: dict[str, Any]) -> list[str]:
    return [s["DBClusterSnapshotArn"] for s in out["DBClusterSnapshots"]]


async def _share(env: Accounts, name: str, *values: str) -> None:
    await env.call(ACCOUNT, "ModifyDBClusterSnapshotAttribute", DBClusterSnapshotIdentifier=name,
                   AttributeName="restore", ValuesToAdd=list(values))


async def test_the_other_account_sees_and_restores_only_what_is_shared_with_it(accounts: Accounts) -> None:
    env = accounts
    plain = await _snapshot(env, "plain", "plain-snap")
    # not shared: the other account cannot see it, by any name, nor restore it
    for params in ({"DBClusterSnapshotIdentifier": plain}, {"DBClusterSnapshotIdentifier": "plain-snap"}):
        err = await env.fails(OTHER, "DescribeDBClusterSnapshots", **params)
        assert err.code == "DBClusterSnapshotNotFoundFault"
    assert _ids(await env.call(OTHER, "DescribeDBClusterSnapshots", SnapshotType="shared")) == []
    err = await env.fails(OTHER, "RestoreDBClusterFromSnapshot", DBClusterIdentifier="mine",
                          SnapshotIdentifier=plain, Engine="aurora-postgresql")
    assert err.code == "DBClusterSnapshotNotFoundFault" and err.message == f"DBClusterSnapshot {plain} not found."
    # the authorization names what the handler acts on: the owner's snapshot ARN
    assert env.service.resolve_resource(ctx(OTHER, "RestoreDBClusterFromSnapshot", {}), "shared-snapshot", plain,
                                        {}) == [plain]
    assert env.service.resolve_resource(ctx(OTHER, "RestoreDBClusterFromSnapshot", {}), "shared-snapshot",
                                        "Mine", {}) == [plain.replace(ACCOUNT, OTHER).replace("plain-snap", "mine")]

    await _share(env, "plain-snap", OTHER)
    assert _ids(await env.call(OTHER, "DescribeDBClusterSnapshots", SnapshotType="shared")) == [plain]
    assert _ids(await env.call(OTHER, "DescribeDBClusterSnapshots", SnapshotType="public")) == []
    assert _ids(await env.call(OTHER, "DescribeDBClusterSnapshots")) == []  # its own only
    assert _ids(await env.call(OTHER, "DescribeDBClusterSnapshots", IncludeShared=True)) == [plain]
    assert _ids(await env.call(OTHER, "DescribeDBClusterSnapshots", SnapshotType="manual", IncludeShared=True)) == []
    assert _ids(await env.call(OTHER, "DescribeDBClusterSnapshots", DBClusterSnapshotIdentifier=plain)) == [plain]
    err = await env.fails(OTHER, "DescribeDBClusterSnapshots", DBClusterSnapshotIdentifier="plain-snap")
    assert err.code == "DBClusterSnapshotNotFoundFault"  # a shared snapshot is named by its ARN
    assert _ids(await env.call(THIRD, "DescribeDBClusterSnapshots", IncludeShared=True, IncludePublic=True)) == []
    # restored by the other account, into a cluster of its own, with the data
    out = await env.call(OTHER, "RestoreDBClusterFromSnapshot", DBClusterIdentifier="mine", SnapshotIdentifier=plain,
                         Engine="aurora-postgresql")
    assert out["DBCluster"]["DBClusterArn"].split(":")[4] == OTHER
    restored = env.service._get_cluster(OTHER, "mine")
    source = env.service._get_cluster(ACCOUNT, "plain")
    assert restored is not None and source is not None and restored.status == "available"
    assert env.runtime.data[restored.resource_id] == b"rows of plain" == env.runtime.data[source.resource_id]

    # public: every account sees it with IncludePublic / SnapshotType public
    await _share(env, "plain-snap", "all")
    assert _ids(await env.call(THIRD, "DescribeDBClusterSnapshots", IncludePublic=True)) == [plain]
    assert _ids(await env.call(THIRD, "DescribeDBClusterSnapshots", SnapshotType="public")) == [plain]
    assert _ids(await env.call(THIRD, "DescribeDBClusterSnapshots", SnapshotType="shared")) == []
    # and no longer once the owner takes the sharing back
    await env.call(ACCOUNT, "ModifyDBClusterSnapshotAttribute", DBClusterSnapshotIdentifier="plain-snap",
                   AttributeName="restore", ValuesToRemove=["all", OTHER])
    err = await env.fails(OTHER, "CopyDBClusterSnapshot", SourceDBClusterSnapshotIdentifier=plain,
                          TargetDBClusterSnapshotIdentifier="late")
    assert err.code == "DBClusterSnapshotNotFoundFault"


async def test_encrypted_shared_snapshots_need_a_key_the_other_account_may_use(accounts: Accounts) -> None:
    env = accounts
    shared_key = env.key(ACCOUNT, users=(OTHER,))
    cmk = await _snapshot(env, "vault", "vault-snap", KmsKeyId=shared_key)
    # the owner's copy under its aws/rds key: shareable, but no other account may use that key
    await env.call(ACCOUNT, "CopyDBClusterSnapshot", SourceDBClusterSnapshotIdentifier="vault-snap",
                   TargetDBClusterSnapshotIdentifier="vault-default", KmsKeyId="alias/aws/rds")
    default = (await env.call(ACCOUNT, "DescribeDBClusterSnapshots",
                              DBClusterSnapshotIdentifier="vault-default"))["DBClusterSnapshots"][0]
    assert default["Status"] == "available"
    await _share(env, "vault-snap", OTHER)
    await _share(env, "vault-default", OTHER)
    err = await env.fails(OTHER, "RestoreDBClusterFromSnapshot", DBClusterIdentifier="nope",
                          SnapshotIdentifier=default["DBClusterSnapshotArn"], Engine="aurora-postgresql")
    assert err.code == "KMSKeyNotAccessibleFault"
    assert env.service._get_cluster(OTHER, "nope") is None
    # a key the other account may use: the restore works, the cluster stays under that key (RDS's grant for the
    # other account's service-linked role)
    await env.call(OTHER, "RestoreDBClusterFromSnapshot", DBClusterIdentifier="mine", SnapshotIdentifier=cmk,
                   Engine="aurora-postgresql")
    view = (await env.call(OTHER, "DescribeDBClusters", DBClusterIdentifier="mine"))["DBClusters"][0]
    assert view["Status"] == "available" and view["StorageEncrypted"] and view["KmsKeyId"] == shared_key
    restored = env.service._get_cluster(OTHER, "mine")
    assert restored is not None and env.runtime.data[restored.resource_id] == b"rows of vault"
    key = env.keyring.resolve(ACCOUNT, shared_key)
    assert any(g.grantee == slr_arn(OTHER) for g in env.keyring.records.grants(ACCOUNT, key.key_id))
    assert env.service.key_problem(restored) is None
    # a third account the key does not allow: refused even when the snapshot is shared with it
    await _share(env, "vault-snap", THIRD)
    err = await env.fails(THIRD, "RestoreDBClusterFromSnapshot", DBClusterIdentifier="theirs",
                          SnapshotIdentifier=cmk, Engine="aurora-postgresql")
    assert err.code == "KMSKeyNotAccessibleFault"

    # a copy of an encrypted shared snapshot names a key of the copier's own
    err = await env.fails(OTHER, "CopyDBClusterSnapshot", SourceDBClusterSnapshotIdentifier=cmk,
                          TargetDBClusterSnapshotIdentifier="my-copy")
    assert err.code == "InvalidParameterValue"
    err = await env.fails(OTHER, "CopyDBClusterSnapshot", SourceDBClusterSnapshotIdentifier=default[
        "DBClusterSnapshotArn"], TargetDBClusterSnapshotIdentifier="my-copy", KmsKeyId=env.key(OTHER))
    assert err.code == "KMSKeyNotAccessibleFault" and "source snapshot KMS key" in err.message
    own_key = env.key(OTHER)
    out = await env.call(OTHER, "CopyDBClusterSnapshot", SourceDBClusterSnapshotIdentifier=cmk,
                         TargetDBClusterSnapshotIdentifier="my-copy", KmsKeyId=own_key)
    copy = out["DBClusterSnapshot"]
    assert copy["DBClusterSnapshotArn"].split(":")[4] == OTHER and copy["SourceDBClusterSnapshotArn"] == cmk
    mine = (await env.call(OTHER, "DescribeDBClusterSnapshots", SnapshotType="manual"))["DBClusterSnapshots"]
    assert [(s["DBClusterSnapshotIdentifier"], s["Status"], s["KmsKeyId"]) for s in mine] == [
        ("my-copy", "available", own_key)]
    await env.call(OTHER, "RestoreDBClusterFromSnapshot", DBClusterIdentifier="from-copy",
                   SnapshotIdentifier="my-copy", Engine="aurora-postgresql")
    from_copy = env.service._get_cluster(OTHER, "from-copy")
    assert from_copy is not None and env.runtime.data[from_copy.resource_id] == b"rows of vault"
