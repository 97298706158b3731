"""Encryption at rest end to end with unmodified boto3 against a running auroral: StorageEncrypted / KmsKeyId
(aws/rds by default, a customer key by id, ARN or alias), RDS's grant on the key, the caller's KMS permissions,
snapshots sealed under the cluster's key (copies re-encrypted under another), and the key's state: a disabled
key makes the cluster inaccessible-encryption-credentials (it stops serving) and restores fail with
KMSKeyNotAccessibleFault; re-enabling it brings the cluster back with its data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from .e2e_helpers import FAST, PASSWORD, Db, create_db, delete_db, ident, until
from .test_snapshots_e2e import ENGINE, restore, rows, snapshot

INACCESSIBLE = "inaccessible-encryption-credentials"


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


@pytest.fixture(scope="module")
def kms(server: Any) -> Any:
    return server.client("kms")


@pytest.fixture(scope="module")
def key(kms: Any) -> dict[str, Any]:
    meta: dict[str, Any] = kms.create_key(Description="rds test key")["KeyMetadata"]
    kms.create_alias(AliasName=f"alias/{ident('rdskey')}", TargetKeyId=meta["KeyId"])
    return meta


@pytest.fixture(scope="module")
def encrypted(rds: Any, key: dict[str, Any]) -> Iterator[Db]:
    db = create_db(rds, prefix="enc", KmsKeyId=key["KeyId"])
    yield db
    delete_db(rds, db)


def _code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def _status(rds: Any, cluster_id: str) -> str:
    return str(rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0]["Status"])


def serving_again(rds: Any, db: Db) -> None:
    """The cluster and its instance available, and a login through the endpoint works."""
    until(lambda: _status(rds, db.cluster_id) == "available", timeout=60, what="available again")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=db.instance_id, WaiterConfig=FAST)
    deadline = time.monotonic() + 30
    while True:
        try:
            with db.connect():
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_storage_encrypted_defaults_to_the_aws_rds_key(rds: Any, kms: Any) -> None:
    cid = ident("enc-default")
    out = rds.create_db_cluster(DBClusterIdentifier=cid, Engine=ENGINE, MasterUsername="master",
                                MasterUserPassword=PASSWORD, StorageEncrypted=True)["DBCluster"]
    try:
        managed = kms.describe_key(KeyId="alias/aws/rds")["KeyMetadata"]
        assert out["StorageEncrypted"] is True and out["KmsKeyId"] == managed["Arn"]
        assert managed["KeyManager"] == "AWS"
        plain = rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]
        assert plain["KmsKeyId"] == managed["Arn"]
    finally:
        rds.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)


def test_customer_key_by_alias_and_arn_with_rds_grant(rds: Any, kms: Any, key: dict[str, Any],
                                                      encrypted: Db) -> None:
    cluster = rds.describe_db_clusters(DBClusterIdentifier=encrypted.cluster_id)["DBClusters"][0]
    assert cluster["StorageEncrypted"] is True and cluster["KmsKeyId"] == key["Arn"]
    grants = kms.list_grants(KeyId=key["KeyId"])["Grants"]
    assert any(g["GranteePrincipal"].endswith(":role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS")
               and "Decrypt" in g["Operations"] for g in grants)
    alias = kms.list_aliases(KeyId=key["KeyId"])["Aliases"][0]
    for spelling in (alias["AliasName"], alias["AliasArn"], key["Arn"]):
        cid = ident("enc-spell")
        out = rds.create_db_cluster(DBClusterIdentifier=cid, Engine=ENGINE, MasterUsername="master",
                                    MasterUserPassword=PASSWORD, KmsKeyId=spelling)["DBCluster"]
        rds.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)
        assert out["KmsKeyId"] == key["Arn"]
    with pytest.raises(ClientError) as info:
        rds.create_db_cluster(DBClusterIdentifier=ident("enc-none"), Engine=ENGINE, MasterUsername="master",
                              MasterUserPassword=PASSWORD, KmsKeyId="alias/no-such-key")
    assert _code(info) == "KMSKeyNotAccessibleFault"


def test_the_caller_needs_create_grant_and_describe_key(server: Any, make_user: Any, key: dict[str, Any]) -> None:
    rds_only = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["rds:*", "iam:CreateServiceLinkedRole"], "Resource": "*"}]})
    client = server.client("rds", rds_only.access_key, rds_only.secret_key)
    with pytest.raises(ClientError) as info:
        client.create_db_cluster(DBClusterIdentifier=ident("enc-deny"), Engine=ENGINE, MasterUsername="master",
                                 MasterUserPassword=PASSWORD, KmsKeyId=key["Arn"])
    assert _code(info) == "KMSKeyNotAccessibleFault"
    both = make_user({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["rds:*", "iam:CreateServiceLinkedRole", "kms:CreateGrant",
                                       "kms:DescribeKey"], "Resource": "*"}]})
    client = server.client("rds", both.access_key, both.secret_key)
    cid = ident("enc-ok")
    client.create_db_cluster(DBClusterIdentifier=cid, Engine=ENGINE, MasterUsername="master",
                             MasterUserPassword=PASSWORD, KmsKeyId=key["Arn"])
    client.delete_db_cluster(DBClusterIdentifier=cid, SkipFinalSnapshot=True)


def test_snapshots_under_the_key_copies_under_another(rds: Any, kms: Any, key: dict[str, Any],
                                                      encrypted: Db) -> None:
    with encrypted.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO notes (note) VALUES ('secret-row')")
    snap = snapshot(rds, encrypted.cluster_id)
    assert snap["StorageEncrypted"] is True and snap["KmsKeyId"] == key["Arn"]
    with pytest.raises(ClientError) as info:  # encrypted: only listed accounts
        rds.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier=snap["DBClusterSnapshotIdentifier"],
                                                 AttributeName="restore", ValuesToAdd=["all"])
    assert _code(info) == "InvalidParameterValue"
    other = kms.create_key(Description="copy key")["KeyMetadata"]
    copy_id = ident("enc-copy")
    out = rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=snap["DBClusterSnapshotArn"],
                                       TargetDBClusterSnapshotIdentifier=copy_id, KmsKeyId=other["KeyId"],
                                       CopyTags=True)["DBClusterSnapshot"]
    assert out["KmsKeyId"] == other["Arn"] and out["SourceDBClusterSnapshotArn"] == snap["DBClusterSnapshotArn"]
    rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier=copy_id, WaiterConfig=FAST)
    # the original key disabled: the copy, under the other key, still restores; the original does not
    kms.disable_key(KeyId=key["KeyId"])
    try:
        with pytest.raises(ClientError) as info:
            rds.restore_db_cluster_from_snapshot(DBClusterIdentifier=ident("enc-r"), Engine=ENGINE,
                                                 SnapshotIdentifier=snap["DBClusterSnapshotIdentifier"])
        assert _code(info) == "KMSKeyNotAccessibleFault"
        restored = restore(rds, copy_id)
        try:
            cluster = rds.describe_db_clusters(DBClusterIdentifier=restored.cluster_id)["DBClusters"][0]
            assert cluster["KmsKeyId"] == other["Arn"]
            assert "secret-row" in rows(restored)
        finally:
            delete_db(rds, restored)
    finally:
        kms.enable_key(KeyId=key["KeyId"])
        serving_again(rds, encrypted)


def test_a_disabled_key_blocks_the_cluster_and_reenabling_recovers(rds: Any, kms: Any, key: dict[str, Any],
                                                                   encrypted: Db) -> None:
    with encrypted.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO notes (note) VALUES ('survives')")
    kms.disable_key(KeyId=key["KeyId"])
    try:
        until(lambda: _status(rds, encrypted.cluster_id) == INACCESSIBLE, timeout=60, what="inaccessible")
        instance = rds.describe_db_instances(DBInstanceIdentifier=encrypted.instance_id)["DBInstances"][0]
        assert instance["DBInstanceStatus"] == INACCESSIBLE

        def refused() -> bool:
            try:
                with encrypted.connect():
                    return False
            except psycopg.OperationalError:
                return True

        until(refused, timeout=30, what="the endpoint closed")
        with pytest.raises(ClientError) as info:
            rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=ident("s"),
                                           DBClusterIdentifier=encrypted.cluster_id)
        assert _code(info) == "InvalidDBClusterStateFault"
    finally:
        kms.enable_key(KeyId=key["KeyId"])
    serving_again(rds, encrypted)
    assert "survives" in rows(encrypted)


def test_rds_uses_the_key_through_its_grant_and_deletion_pending_blocks(rds: Any, kms: Any, key: dict[str, Any],
                                                                        encrypted: Db) -> None:
    """Revoking RDS's grant makes the key unusable for RDS (the cluster stops serving) until a grant to
    AWSServiceRoleForRDS exists again; a key pending deletion blocks it until the deletion is cancelled and
    the key enabled again."""
    serving_again(rds, encrypted)
    with encrypted.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO notes (note) VALUES ('grant-row')")
    slr = [g for g in kms.list_grants(KeyId=key["KeyId"])["Grants"]
           if g["GranteePrincipal"].endswith("/AWSServiceRoleForRDS")]
    for grant in slr:
        kms.revoke_grant(KeyId=key["KeyId"], GrantId=grant["GrantId"])
    until(lambda: _status(rds, encrypted.cluster_id) == INACCESSIBLE, timeout=60, what="inaccessible")
    kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=slr[0]["GranteePrincipal"],
                     Operations=["Decrypt", "Encrypt", "GenerateDataKey", "DescribeKey", "CreateGrant"])
    serving_again(rds, encrypted)
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    try:
        until(lambda: _status(rds, encrypted.cluster_id) == INACCESSIBLE, timeout=60, what="inaccessible")
    finally:
        kms.cancel_key_deletion(KeyId=key["KeyId"])
        kms.enable_key(KeyId=key["KeyId"])
    serving_again(rds, encrypted)
    assert "grant-row" in rows(encrypted)


def test_point_in_time_restore_of_an_encrypted_cluster(rds: Any, kms: Any, server: Any, key: dict[str, Any],
                                                       encrypted: Db) -> None:
    """The WAL archive is sealed under a data key of the cluster's KMS key: the restore needs the key."""
    serving_again(rds, encrypted)
    snapshot(rds, encrypted.cluster_id)
    with encrypted.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO notes (note) VALUES ('in-the-wal')")
    other = kms.create_key(Description="pitr key")["KeyMetadata"]
    cid, iid = ident("enc-pitr"), ident("enc-pitr-i")
    out = rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier=cid, SourceDBClusterIdentifier=encrypted.cluster_id,
                                                  UseLatestRestorableTime=True, KmsKeyId=other["Arn"])["DBCluster"]
    assert out["KmsKeyId"] == other["Arn"] and out["StorageEncrypted"] is True
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=cid, WaiterConfig=FAST)
    rds.create_db_instance(DBInstanceIdentifier=iid, DBClusterIdentifier=cid, Engine=ENGINE,
                           DBInstanceClass="db.r6g.large")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=iid, WaiterConfig=FAST)
    found = rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]
    restored = Db(cid, iid, found["Endpoint"], found["Port"], found["DbClusterResourceId"], PASSWORD)
    try:
        assert "in-the-wal" in rows(restored)
    finally:
        delete_db(rds, restored)
    archive = server.data_dir / "snapshots" / "wal" / encrypted.resource_id
    files = list(archive.iterdir())
    assert files and all(b"in-the-wal" not in f.read_bytes() for f in files)
    kms.disable_key(KeyId=key["KeyId"])
    try:
        with pytest.raises(ClientError) as info:
            rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier=ident("enc-pitr-x"),
                                                    SourceDBClusterIdentifier=encrypted.cluster_id,
                                                    UseLatestRestorableTime=True)
        assert _code(info) == "KMSKeyNotAccessibleFault"
    finally:
        kms.enable_key(KeyId=key["KeyId"])
    serving_again(rds, encrypted)
