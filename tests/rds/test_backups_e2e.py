"""Automated backups end to end: a cluster whose PreferredBackupWindow opens gets an automated snapshot
(SnapshotType automated, rds:<cluster>-<time>) from the scheduler, listed apart by the SnapshotType filter,
not deletable by hand (AWS's InvalidDBClusterSnapshotStateFault), restorable; DeleteDBCluster removes the
cluster's automated snapshots unless DeleteAutomatedBackups=false."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import new_root_key, start_server, stop_server

from .e2e_helpers import create_db, delete_db, until, wait_instance_gone
from .test_snapshots_e2e import restore, rows


def _automated(rds: Any, cluster_id: str) -> list[dict[str, Any]]:
    return list(rds.describe_db_cluster_snapshots(DBClusterIdentifier=cluster_id,
                                                  SnapshotType="automated")["DBClusterSnapshots"])


def test_automated_backups_in_the_window(base: Path) -> None:
    key, secret = new_root_key()
    srv = start_server(base / "data", access_key=key, secret_key=secret, account="123456789012",
                       extra_env={"AURORAL_BACKUP_CHECK_SECONDS": "2"})
    try:
        rds = srv.client("rds")
        dbs = [create_db(rds, prefix="bak", BackupRetentionPeriod=3) for _ in range(2)]
        with dbs[0].connect() as conn:
            conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
            conn.execute("INSERT INTO notes (note) VALUES ('nightly')")
        # a window opening within the minute, after the clusters' creation (and their first backups) and the rows
        opens = datetime.now(UTC) + timedelta(minutes=1)
        window = f"{opens:%H:%M}-{opens + timedelta(minutes=30):%H:%M}"
        for db in dbs:
            rds.modify_db_cluster(DBClusterIdentifier=db.cluster_id, PreferredBackupWindow=window,
                                  ApplyImmediately=True)
        cluster = rds.describe_db_clusters(DBClusterIdentifier=dbs[0].cluster_id)["DBClusters"][0]
        assert cluster["PreferredBackupWindow"] == window and cluster["BackupRetentionPeriod"] == 3
        opened = opens.replace(second=0, microsecond=0)
        for db in dbs:  # the scheduled one (besides the first backup, taken at the create)
            until(lambda db=db: any(s["Status"] == "available" and s["SnapshotCreateTime"] >= opened
                                    for s in _automated(rds, db.cluster_id)),
                  timeout=150, what="an automated snapshot")
        snap = _automated(rds, dbs[0].cluster_id)[-1]
        assert snap["SnapshotType"] == "automated"
        assert snap["DBClusterSnapshotIdentifier"].startswith(f"rds:{dbs[0].cluster_id}-")
        manual = rds.describe_db_cluster_snapshots(DBClusterIdentifier=dbs[0].cluster_id,
                                                   SnapshotType="manual")["DBClusterSnapshots"]
        assert manual == []
        with pytest.raises(ClientError) as info:
            rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=snap["DBClusterSnapshotIdentifier"])
        assert info.value.response["Error"]["Code"] == "InvalidDBClusterSnapshotStateFault"
        restored = restore(rds, snap["DBClusterSnapshotIdentifier"])
        try:
            assert rows(restored) == ["nightly"]
        finally:
            delete_db(rds, restored)
        # deleting the clusters: automated snapshots go, unless DeleteAutomatedBackups=false
        for db, keep in zip(dbs, (False, True), strict=True):
            rds.delete_db_instance(DBInstanceIdentifier=db.instance_id, SkipFinalSnapshot=True)
            wait_instance_gone(rds, db.instance_id)
            rds.delete_db_cluster(DBClusterIdentifier=db.cluster_id, SkipFinalSnapshot=True,
                                  DeleteAutomatedBackups=not keep)
            rds.get_waiter("db_cluster_deleted").wait(DBClusterIdentifier=db.cluster_id,
                                                      WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
            assert bool(_automated(rds, db.cluster_id)) == keep
    finally:
        stop_server(srv)
