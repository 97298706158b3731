"""Point-in-time restore end to end: continuous WAL archiving (sealed on disk), EarliestRestorableTime /
LatestRestorableTime in DescribeDBClusters, RestoreDBClusterToPointInTime to just before rows were deleted
(RestoreToTime) and to the latest restorable time; AWS's errors outside the window."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .e2e_helpers import FAST, PASSWORD, Db, create_db, delete_db, ident
from .test_snapshots_e2e import ENGINE, snapshot


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


@pytest.fixture(scope="module")
def source(rds: Any) -> Iterator[Db]:
    db = create_db(rds, prefix="pitr")
    yield db
    delete_db(rds, db)


def restore_to(rds: Any, source: Db, **when: Any) -> Db:
    cid, iid = ident("pitr-r"), ident("pitr-ri")
    answer = rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier=cid, SourceDBClusterIdentifier=source.cluster_id,
                                                     RestoreType="copy-on-write", **when)["DBCluster"]
    assert answer["Status"] == "creating"
    rds.get_waiter("db_cluster_available").wait(DBClusterIdentifier=cid, WaiterConfig=FAST)
    rds.create_db_instance(DBInstanceIdentifier=iid, DBClusterIdentifier=cid, Engine=ENGINE,
                           DBInstanceClass="db.r6g.large")
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier=iid, WaiterConfig=FAST)
    cluster = rds.describe_db_clusters(DBClusterIdentifier=cid)["DBClusters"][0]
    return Db(cid, iid, cluster["Endpoint"], cluster["Port"], cluster["DbClusterResourceId"], PASSWORD)


def notes(db: Db) -> list[str]:
    with db.connect() as conn:
        return [r[0] for r in conn.execute("SELECT note FROM notes ORDER BY id").fetchall()]


def test_restore_to_just_before_the_rows_were_deleted(rds: Any, server: Any, source: Db) -> None:
    with source.connect() as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO notes (note) VALUES ('in-the-snapshot')")
    snap = snapshot(rds, source.cluster_id)
    with source.connect() as conn:
        conn.execute("INSERT INTO notes (note) SELECT 'after-snapshot-' || g FROM generate_series(1, 3) g")
        conn.execute("CREATE TABLE filler AS SELECT g, md5(g::text) h FROM generate_series(1, 20000) g")
    time.sleep(1.5)
    before_delete = datetime.now(UTC)
    time.sleep(1.5)
    with source.connect() as conn:
        conn.execute("DELETE FROM notes")
    with pytest.raises(ClientError) as info:  # before the first backup
        rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier=ident("pitr-x"),
                                                SourceDBClusterIdentifier=source.cluster_id,
                                                RestoreToTime=snap["SnapshotCreateTime"] - timedelta(hours=1))
    assert info.value.response["Error"]["Code"] == "InvalidRestoreFault"
    restored = restore_to(rds, source, RestoreToTime=before_delete)
    try:
        assert notes(restored) == ["in-the-snapshot", "after-snapshot-1", "after-snapshot-2", "after-snapshot-3"]
        with restored.connect() as conn:  # a primary of its own
            conn.execute("INSERT INTO notes (note) VALUES ('new')")
    finally:
        delete_db(rds, restored)
    cluster = rds.describe_db_clusters(DBClusterIdentifier=source.cluster_id)["DBClusters"][0]
    assert cluster["EarliestRestorableTime"] <= before_delete <= cluster["LatestRestorableTime"]
    # the archive is sealed: no WAL file of the archive holds the rows' text
    archive = server.data_dir / "snapshots" / "wal" / source.resource_id
    files = list(archive.iterdir())
    assert files and all(b"after-snapshot-" not in f.read_bytes() for f in files)


def test_restore_to_the_latest_restorable_time(rds: Any, source: Db) -> None:
    with source.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO notes (note) VALUES ('latest')")
    if not rds.describe_db_cluster_snapshots(DBClusterIdentifier=source.cluster_id)["DBClusterSnapshots"]:
        snapshot(rds, source.cluster_id)
    restored = restore_to(rds, source, UseLatestRestorableTime=True)
    try:
        assert notes(restored)[-1] == "latest"
    finally:
        delete_db(rds, restored)
    with pytest.raises(ClientError) as info:
        rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier=ident("pitr-x"),
                                                SourceDBClusterIdentifier=source.cluster_id,
                                                UseLatestRestorableTime=True, RestoreToTime=datetime.now(UTC))
    assert info.value.response["Error"]["Code"] == "InvalidParameterCombination"
