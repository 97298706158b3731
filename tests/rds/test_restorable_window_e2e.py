"""A cluster is restorable from its creation, as on Aurora: its first automated backup (sealed under the
cluster's KMS key) is taken as soon as it is available, so EarliestRestorableTime is reported without any
manual or scheduled snapshot, and RestoreDBClusterToPointInTime brings back rows deleted later. A restore of a
cluster whose master password Secrets Manager manages does not take the secret along (neither restore
operation has ManageMasterUserPassword in its model): the restored cluster's master password is the one in
the data, until ModifyDBCluster turns management on for it. Logins with the system psql."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .e2e_helpers import FAST, Db, delete_db, ident, psql, until
from .test_managed_password import Managed, create_managed, secret_value, wait_secret_status
from .test_pitr_e2e import notes, restore_to
from .test_snapshots_e2e import restore


@pytest.fixture(scope="module")
def rds(server: Any) -> Any:
    return server.client("rds")


@pytest.fixture(scope="module")
def sm(server: Any) -> Any:
    return server.client("secretsmanager")


@pytest.fixture(scope="module")
def key(server: Any) -> dict[str, Any]:
    return dict(server.client("kms").create_key(Description="restorable window")["KeyMetadata"])


@pytest.fixture(scope="module")
def born(rds: Any, sm: Any, key: dict[str, Any]) -> Iterator[Managed]:
    """One encrypted cluster with a managed master password, for the whole module."""
    created = create_managed(rds, sm, "born", KmsKeyId=key["KeyId"])
    yield created
    delete_db(rds, created.db)


def _cluster(rds: Any, cluster_id: str) -> dict[str, Any]:
    return dict(rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"][0])


def _automated(rds: Any, cluster_id: str) -> list[dict[str, Any]]:
    return list(rds.describe_db_cluster_snapshots(DBClusterIdentifier=cluster_id,
                                                  SnapshotType="automated")["DBClusterSnapshots"])


def test_restorable_from_creation_without_any_snapshot(rds: Any, key: dict[str, Any], born: Managed) -> None:
    db = born.db
    cluster = until(lambda: (c := _cluster(rds, db.cluster_id)).get("EarliestRestorableTime") and c,
                    timeout=60, what="EarliestRestorableTime")
    created = cluster["ClusterCreateTime"]
    assert created <= cluster["EarliestRestorableTime"] <= created + timedelta(seconds=60)
    assert cluster["LatestRestorableTime"] >= cluster["EarliestRestorableTime"]
    # the window starts at the cluster's first automated backup, sealed under the cluster's key; nobody took
    # a snapshot
    assert rds.describe_db_cluster_snapshots(DBClusterIdentifier=db.cluster_id,
                                             SnapshotType="manual")["DBClusterSnapshots"] == []
    (first,) = _automated(rds, db.cluster_id)
    assert first["Status"] == "available" and first["DBClusterSnapshotIdentifier"].startswith(f"rds:{db.cluster_id}-")
    assert first["StorageEncrypted"] and first["KmsKeyId"] == key["Arn"]
    assert first["SnapshotCreateTime"] == cluster["EarliestRestorableTime"]

    with db.connect() as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text)")
        conn.execute("INSERT INTO notes (note) SELECT 'kept-' || g FROM generate_series(1, 3) g")
    time.sleep(1.5)
    before_delete = datetime.now(UTC)
    time.sleep(1.5)
    with db.connect() as conn:
        conn.execute("DELETE FROM notes")
    with pytest.raises(ClientError) as info:  # before the cluster existed
        rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier=ident("born-x"),
                                                SourceDBClusterIdentifier=db.cluster_id,
                                                RestoreToTime=created - timedelta(minutes=5))
    assert info.value.response["Error"]["Code"] == "InvalidRestoreFault"
    restored = restore_to(rds, db, RestoreToTime=before_delete)
    restored.password = db.password  # the source's, in the data
    try:
        assert notes(restored) == ["kept-1", "kept-2", "kept-3"]
        view = _cluster(rds, restored.cluster_id)
        assert view["StorageEncrypted"] and view["KmsKeyId"] == key["Arn"]
        # the secret stays the source's: the restored cluster has none, and the password in its data (the
        # source's at that time) logs in
        assert "MasterUserSecret" not in view
        assert psql(restored, "SELECT count(*) FROM notes", password=db.password).stdout.strip() == "3"
        # a restored cluster is restorable from its own creation too
        until(lambda: _cluster(rds, restored.cluster_id).get("EarliestRestorableTime"), timeout=60,
              what="the restored cluster's EarliestRestorableTime")
    finally:
        delete_db(rds, restored)
    assert _automated(rds, db.cluster_id) == [first]  # no other backup was needed


def test_a_restore_of_a_managed_password_cluster_does_not_keep_its_secret(rds: Any, sm: Any,
                                                                         born: Managed) -> None:
    first = until(lambda: [s for s in _automated(rds, born.db.cluster_id) if s["Status"] == "available"],
                  timeout=60, what="the first backup")[0]
    restored: Db = restore(rds, first["DBClusterSnapshotIdentifier"])
    restored.password = born.db.password
    try:
        assert "MasterUserSecret" not in _cluster(rds, restored.cluster_id)
        assert psql(restored, "SELECT current_user").stdout.strip() == restored.master
        # management turned on for the restored cluster: a secret of its own, whose password logs in
        rds.modify_db_cluster(DBClusterIdentifier=restored.cluster_id, ManageMasterUserPassword=True,
                              ApplyImmediately=True)
        view = wait_secret_status(rds, restored.cluster_id, "active")
        arn = view["MasterUserSecret"]["SecretArn"]
        assert arn != born.secret_arn
        password = secret_value(sm, arn)["password"]
        assert password != born.db.password
        assert psql(restored, "SELECT current_user", password=password).stdout.strip() == restored.master
        assert psql(restored, "SELECT 1", password=born.db.password, check=False).returncode != 0
        # the source's secret is untouched: it still opens the source
        assert secret_value(sm, born.secret_arn)["password"] == born.db.password
        assert psql(born.db, "SELECT 1").stdout.strip() == "1"
    finally:
        delete_db(rds, restored)
        rds.get_waiter("db_cluster_deleted").wait(DBClusterIdentifier=restored.cluster_id, WaiterConfig=FAST)
