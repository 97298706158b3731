"""DB cluster snapshots end to end with unmodified boto3 against a running auroral and real PostgreSQL: a
snapshot of a serving cluster holds the rows written before it (and not those after), restores into a new
cluster that CreateDBInstance serves, is sealed on disk (no plaintext of the data in its file), copies
(re-encrypted under another KMS key), shares, and goes with DeleteDBClusterSnapshot; DeleteDBCluster takes
a final snapshot. AWS's errors where the request is wrong."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .e2e_helpers import FAST, Db, create_db, delete_db, ident, until, wait_instance_gone

ENGINE = "aurora-postgresql"


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


@pytest.fixture(scope="module")
def source(rds: Any) -> Iterator[Db]:
    db = create_db(rds, prefix="snap", CopyTagsToSnapshot=True, Tags=[{"Key": "team", "Value": "blue"}])
    yield db
    delete_db(rds, db)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _message(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Message"])


def snapshot(rds: Any, cluster_id: str, **extra: Any) -> dict[str, Any]:
    sid = ident("snap-s")
    answer = rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=sid, DBClusterIdentifier=cluster_id,
                                            **extra)["DBClusterSnapshot"]
    assert answer["Status"] == "creating"
    rds.get_waiter("db_cluster_snapshot_available").wait(DBClusterSnapshotIdentifier=sid, WaiterConfig=FAST)
    found: dict[str, Any] = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=sid)["DBClusterSnapshots"][0]
    return found


def restore(rds: Any, snapshot_id: str, **extra: Any) -> Db:
    """A new cluster from the snapshot, with an instance added as on AWS; ready for SQL."""
    cid, iid = ident("snap-r"), ident("snap-ri")
    answer = rds.restore_db_cluster_from_snapshot(DBClusterIdentifier=cid, SnapshotIdentifier=snapshot_id,
                                                  Engine=ENGINE, **extra)["DBCluster"]
    assert answer["Status"] == "creating"
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=cid, WaiterConfig=FAST)
    rds.create_db_instance(DBInstanceIdentifier=iid, DBClusterIdentifier=cid, Engine=ENGINE,
                           DBInstanceClass="db.r6g.large")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=iid, WaiterConfig=FAST)
    cluster = rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]
    return Db(cid, iid, cluster["Endpoint"], cluster["Port"], cluster["DbClusterResourceId"], "Master-pass-1")


def rows(db: Db) -> list[str]:
    with db.connect() as conn:
        return [r[0] for r in conn.execute("SELECT note FROM notes ORDER BY id").fetchall()]


def test_snapshot_restore_keeps_the_rows_written_before_it(rds: Any, server: Any, source: Db) -> None:
    marker = f"plaintext-marker-{secrets.token_hex(8)}"
    with source.connect() as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO notes (note) VALUES ('before-1'), (%s)", (marker,))
    snap = snapshot(rds, source.cluster_id)
    assert snap["DBClusterIdentifier"] == source.cluster_id
    assert snap["SnapshotType"] == "manual" and snap["StorageEncrypted"] is False
    assert {"Key": "team", "Value": "blue"} in snap["TagList"]  # CopyTagsToSnapshot
    messages = [e["Message"] for e in rds.describe_events(
        SourceType="db-cluster-snapshot", SourceIdentifier=snap["DBClusterSnapshotIdentifier"])["Events"]]
    assert messages == ["Creating manual cluster snapshot", "Manual cluster snapshot created"]
    with source.connect() as conn:  # the source kept serving; this row is not in the snapshot
        conn.execute("INSERT INTO notes (note) VALUES ('after')")
    # sealed on disk: the data's plaintext appears in no file of the snapshot store
    files = [f for f in (server.data_dir / "snapshots").rglob("*") if f.is_file()]  # snapshots and WAL archive
    assert files and all(marker.encode() not in f.read_bytes() for f in files)
    restored = restore(rds, snap["DBClusterSnapshotIdentifier"])
    try:
        assert rows(restored) == ["before-1", marker]
        with restored.connect() as conn:  # a primary: it takes writes
            conn.execute("INSERT INTO notes (note) VALUES ('restored')")
        assert rows(source) == ["before-1", marker, "after"]
    finally:
        delete_db(rds, restored)


def test_errors_are_aws_s(rds: Any, source: Db) -> None:
    with pytest.raises(ClientError) as info:
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=ident("s"), DBClusterIdentifier="no-such-cluster")
    assert _code(info) == "DBClusterNotFoundFault"
    with pytest.raises(ClientError) as info:
        rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier="no-such-snapshot")
    assert _code(info) == "DBClusterSnapshotNotFoundFault"
    with pytest.raises(ClientError) as info:
        rds.restore_db_cluster_from_snapshot(DBClusterIdentifier=ident("r"), SnapshotIdentifier="no-such-snapshot",
                                             Engine=ENGINE)
    assert _code(info) == "DBClusterSnapshotNotFoundFault"
    with pytest.raises(ClientError) as info:
        rds.delete_db_cluster(DBClusterIdentifier=source.cluster_id)
    assert (_code(info), _message(info)) == (
        "InvalidParameterCombination", "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.")
    with pytest.raises(ClientError) as info:
        rds.delete_db_cluster(DBClusterIdentifier=source.cluster_id, SkipFinalSnapshot=True,
                              FinalDBSnapshotIdentifier=ident("f"))
    assert _code(info) == "InvalidParameterCombination"
    for bad in (0, 36):
        with pytest.raises(ClientError) as info:
            rds.create_db_cluster(DBClusterIdentifier=ident("bad"), Engine=ENGINE, MasterUsername="master",
                                  MasterUserPassword="Master-pass-1", BackupRetentionPeriod=bad)
        assert _code(info) == "InvalidParameterValue"
    snap = snapshot(rds, source.cluster_id)
    with pytest.raises(ClientError) as info:
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=snap["DBClusterSnapshotIdentifier"],
                                       DBClusterIdentifier=source.cluster_id)
    assert _code(info) == "DBClusterSnapshotAlreadyExistsFault"
    with pytest.raises(ClientError) as info:  # an unencrypted snapshot's copy cannot take a key
        rds.copy_db_cluster_snapshot(SourceDBClusterSnapshotIdentifier=snap["DBClusterSnapshotIdentifier"],
                                     TargetDBClusterSnapshotIdentifier=ident("c"), KmsKeyId="alias/aws/rds")
    assert _code(info) == "InvalidParameterCombination"
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=snap["DBClusterSnapshotIdentifier"])
    rds.get_waiter("db_cluster_snapshot_deleted").wait(DBClusterSnapshotIdentifier=snap["DBClusterSnapshotIdentifier"],
                                                       WaiterConfig=FAST)


def test_sharing_and_listing(rds: Any, server: Any, source: Db) -> None:
    snap = snapshot(rds, source.cluster_id, Tags=[{"Key": "own", "Value": "tag"}])
    sid = snap["DBClusterSnapshotIdentifier"]
    assert snap["TagList"] == [{"Key": "own", "Value": "tag"}]  # the request's tags win over the cluster's
    out = rds.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier=sid, AttributeName="restore",
                                                   ValuesToAdd=["210987654321", "all"])
    assert out["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"] == [
        {"AttributeName": "restore", "AttributeValues": ["210987654321", "all"]}]
    rds.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier=sid, AttributeName="restore",
                                             ValuesToRemove=["all"])
    attrs = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=sid)
    assert attrs["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"][0]["AttributeValues"] == [
        "210987654321"]
    listed = rds.describe_db_cluster_snapshots(DBClusterIdentifier=source.cluster_id, SnapshotType="manual")
    assert sid in [s["DBClusterSnapshotIdentifier"] for s in listed["DBClusterSnapshots"]]
    automated = rds.describe_db_cluster_snapshots(DBClusterIdentifier=source.cluster_id,
                                                  SnapshotType="automated")["DBClusterSnapshots"]
    assert sid not in [s["DBClusterSnapshotIdentifier"] for s in automated]  # only the cluster's first backup
    assert all(s["SnapshotType"] == "automated" for s in automated)
    rds.add_tags_to_resource(ResourceName=snap["DBClusterSnapshotArn"], Tags=[{"Key": "more", "Value": "x"}])
    tags = rds.list_tags_for_resource(ResourceName=snap["DBClusterSnapshotArn"])["TagList"]
    assert {"Key": "more", "Value": "x"} in tags
    # the AWS CLI, unmodified, sees the same snapshot by its ARN
    cli = server.cli_json("rds", "describe-db-cluster-snapshots", "--db-cluster-snapshot-identifier",
                          snap["DBClusterSnapshotArn"])
    assert cli["DBClusterSnapshots"][0]["DBClusterSnapshotIdentifier"] == sid
    assert cli["DBClusterSnapshots"][0]["Status"] == "available"
    rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=sid)


def test_final_snapshot_on_delete(rds: Any) -> None:
    db = create_db(rds, prefix="snapfin")
    final = ident("snap-final")
    try:
        with db.connect() as conn:
            conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
            conn.execute("INSERT INTO notes (note) VALUES ('kept')")
        rds.delete_db_instance(DBInstanceIdentifier=db.instance_id, SkipFinalSnapshot=True)
        wait_instance_gone(rds, db.instance_id)
        out = rds.delete_db_cluster(DBClusterIdentifier=db.cluster_id, FinalDBSnapshotIdentifier=final)
        assert out["DBCluster"]["Status"] == "deleting"
        rds.get_waiter("db_cluster_deleted").wait(DBClusterIdentifier=db.cluster_id, WaiterConfig=FAST)
        snap = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=final)["DBClusterSnapshots"][0]
        assert snap["Status"] == "available" and snap["DBClusterIdentifier"] == db.cluster_id
        restored = restore(rds, final)
        try:
            assert rows(restored) == ["kept"]
        finally:
            delete_db(rds, restored)
    finally:
        delete_db(rds, db)


def test_final_snapshot_of_a_stopped_cluster(rds: Any) -> None:
    """A stopped cluster's server is started for the backup only; the data comes back in the restore."""
    db = create_db(rds, prefix="snapstop")
    final = ident("snap-stopfinal")
    try:
        with db.connect() as conn:
            conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
            conn.execute("INSERT INTO notes (note) VALUES ('stopped-but-kept')")
        rds.stop_db_cluster(DBClusterIdentifier=db.cluster_id)
        until(lambda: rds.describe_db_clusters(DBClusterIdentifier=db.cluster_id)["DBClusters"][0]["Status"]
              == "stopped", timeout=60, what="stopped")
        rds.delete_db_instance(DBInstanceIdentifier=db.instance_id, SkipFinalSnapshot=True)
        wait_instance_gone(rds, db.instance_id)
        rds.delete_db_cluster(DBClusterIdentifier=db.cluster_id, FinalDBSnapshotIdentifier=final)
        rds.get_waiter("db_cluster_deleted").wait(DBClusterIdentifier=db.cluster_id, WaiterConfig=FAST)
        restored = restore(rds, final)
        try:
            assert rows(restored) == ["stopped-but-kept"]
        finally:
            delete_db(rds, restored)
    finally:
        delete_db(rds, db)
