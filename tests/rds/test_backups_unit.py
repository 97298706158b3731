"""The automated backup schedule (rds/backups.py) against the real store, with a clock of our own: due once a
backup window opened since the cluster's creation and its last automated snapshot, one per window, expired
after BackupRetentionPeriod days; BackupRetentionPeriod / PreferredBackupWindow validated as AWS does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from auroral.rds.backups import backup_due, last_window_start
from auroral.rds.model import Cluster
from auroral.rds.snapshot_model import AUTOMATED, KIND_SNAPSHOT, ClusterSnapshot

from .conftest import Env

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_last_window_start() -> None:
    assert last_window_start("07:00-07:30", NOW) == datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
    assert last_window_start("23:45-00:15", NOW) == datetime(2026, 3, 9, 23, 45, tzinfo=UTC)
    assert last_window_start("12:00-12:30", NOW) == NOW


def _cluster(created: datetime, window: str = "07:00-07:30") -> Cluster:
    return Cluster(identifier="c", account="a", region="us-east-1", resource_id="cluster-X", engine_version="16.4",
                   major=16, master_username="m", created=created, parameter_group="g",
                   preferred_backup_window=window)


def test_backup_due() -> None:
    assert not backup_due(_cluster(NOW - timedelta(hours=1)), None, NOW)  # no window since creation
    assert backup_due(_cluster(NOW - timedelta(days=1)), None, NOW)
    assert backup_due(_cluster(NOW - timedelta(days=3)), NOW - timedelta(days=1), NOW)
    assert not backup_due(_cluster(NOW - timedelta(days=3)), NOW - timedelta(hours=4), NOW)  # today's taken


async def test_tick_takes_due_backups_and_expires_old_ones(env: Env) -> None:
    await env.cluster("c1", BackupRetentionPeriod=2, PreferredBackupWindow="07:00-07:30")
    cluster = env.service._get_cluster("123456789012", "c1") or env.service._clusters(None)[0]
    old = env.service._new_snapshot(cluster, "rds:c1-old", {}, AUTOMATED)
    old.status, old.created = "available", cluster.created - timedelta(days=1)
    env.service._save_snapshot(old)
    later = cluster.created + timedelta(days=3)
    env.service.backup_tick(later)
    names = {s.identifier: s for s in env.service._snapshots(None)}
    assert "rds:c1-old" not in names  # older than 2 days
    new = [s for s in names.values() if s.snapshot_type == AUTOMATED]
    assert len(new) == 1 and new[0].status == "creating" and new[0].identifier.startswith("rds:c1-")
    env.service.backup_tick(later + timedelta(minutes=5))  # one per window
    assert len([s for s in env.service._snapshots(None) if s.snapshot_type == AUTOMATED]) == 1
    doc = env.store.get(KIND_SNAPSHOT, cluster.account, new[0].identifier)
    assert doc is not None and ClusterSnapshot.from_doc(doc).snapshot_type == AUTOMATED
    await env.service.drain()


async def test_retention_and_window_are_validated(env: Env) -> None:
    for bad in ("0", "36", "x"):
        err = await env.fails("CreateDBCluster", DBClusterIdentifier="c9", Engine="aurora-postgresql",
                              MasterUsername="master", MasterUserPassword="Secret-pass1", BackupRetentionPeriod=bad)
        assert err.code == "InvalidParameterValue"
    for bad in ("07:00-07:10", "7:00-08:00", "25:00-26:00"):
        err = await env.fails("CreateDBCluster", DBClusterIdentifier="c9", Engine="aurora-postgresql",
                              MasterUsername="master", MasterUserPassword="Secret-pass1", PreferredBackupWindow=bad)
        assert err.code == "InvalidParameterValue"
    out = await env.cluster("c2", BackupRetentionPeriod=7, PreferredBackupWindow="03:00-03:30")
    assert out["BackupRetentionPeriod"] == 7 and out["PreferredBackupWindow"] == "03:00-03:30"
    await env.call("ModifyDBCluster", DBClusterIdentifier="c2", BackupRetentionPeriod=14,
                   PreferredBackupWindow="04:00-05:00", ApplyImmediately=True)
    described = await env.describe_cluster("c2")
    assert described["BackupRetentionPeriod"] == 14 and described["PreferredBackupWindow"] == "04:00-05:00"


async def test_a_cluster_never_backed_up_gets_its_first_backup_at_once(env: Env) -> None:
    # (a restart between a create and its first backup): no window needs to open first
    await env.cluster("c1", PreferredBackupWindow="07:00-07:30")
    cluster = env.service._clusters(None)[0]
    soon = cluster.created + timedelta(minutes=1)
    assert not backup_due(cluster, None, soon)
    env.service.backup_tick(soon)
    first = [s for s in env.service._snapshots(None) if s.snapshot_type == AUTOMATED]
    assert [s.status for s in first] == ["creating"]
    env.service.backup_tick(soon + timedelta(minutes=1))  # not a second one while it is taken
    assert len([s for s in env.service._snapshots(None) if s.snapshot_type == AUTOMATED]) == 1
    await env.service.drain()


async def test_a_failed_first_backup_is_taken_again_an_hour_later(env: Env) -> None:
    await env.cluster("c1")
    cluster = env.service._clusters(None)[0]
    failed = env.service._new_snapshot(cluster, "rds:c1-first", {}, AUTOMATED)
    failed.status = "failed"
    env.service._save_snapshot(failed)
    env.service.backup_tick(failed.created + timedelta(minutes=30))  # not yet: no new attempt every tick
    assert [s.identifier for s in env.service._snapshots(None)] == ["rds:c1-first"]
    env.service.backup_tick(failed.created + timedelta(hours=1, minutes=1))
    again = env.service._snapshots(None)
    assert len(again) == 1 and again[0].identifier != "rds:c1-first" and again[0].status == "creating"
    await env.service.drain()
