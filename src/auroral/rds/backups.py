"""Automated backups: a daily automated snapshot of every available cluster in its ``PreferredBackupWindow``,
kept for ``BackupRetentionPeriod`` days (1-35), as Aurora's automated backups (snapshot type ``automated``,
named ``rds:<cluster>-<yyyy-mm-dd-hh-mm>``).

As on Aurora, a cluster is restorable from (about) its creation: its first automated backup is taken as soon
as it is available (created or restored; ``_first_backup``), so ``EarliestRestorableTime`` is reported once that
backup completes (absent before: Describe leaves it out while there is nothing to restore from, as for a
cluster whose first backup has not finished on AWS; Unconfirmed) and the continuous WAL archive replays from it.
That backup does not hold up the cluster's other work (its first instance): it runs in turn with its own key.

The schedule keeps no state of its own: what is due is derived from the stored snapshots, so a restart (or a
window missed while auroral was down) catches up at the next tick. A cluster with no available automated
snapshot gets its first one (auroral stopped between a create and its first backup; a failed first backup is
taken again an hour later, replacing it); after that, one is due once a backup window has opened since the
cluster was created and since its last automated snapshot; automated snapshots older than the retention
period are deleted. The scheduler ticks every ``AURORAL_BACKUP_CHECK_SECONDS`` (default 60).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from datetime import datetime, timedelta

from auroral.rds.model import Cluster, utcnow
from auroral.rds.snapshot_model import AUTOMATED, ClusterSnapshot
from auroral.rds.validate import window_start_minutes
from auroral.rds.wal_archive import WalArchiveOperations

log = logging.getLogger("auroral.rds")


FIRST_BACKUP_RETRY = timedelta(hours=1)  # a failed first backup (its key disabled meanwhile, say) is taken again


def last_window_start(window: str, now: datetime) -> datetime:
    """The latest opening of the daily ``hh24:mi-hh24:mi`` window at or before ``now`` (UTC)."""
    minutes = window_start_minutes(window)
    today = now.replace(hour=minutes // 60, minute=minutes % 60, second=0, microsecond=0)
    return today if today <= now else today - timedelta(days=1)


def backup_due(cluster: Cluster, last: datetime | None, now: datetime) -> bool:
    opened = last_window_start(cluster.preferred_backup_window, now)
    return cluster.created < opened and (last is None or last < opened)


def expired(snapshot: ClusterSnapshot, retention_days: int, now: datetime) -> bool:
    return snapshot.created < now - timedelta(days=retention_days)


def automated_name(cluster: Cluster, when: datetime) -> str:
    return f"rds:{cluster.identifier}-{when:%Y-%m-%d-%H-%M}"


class BackupOperations(WalArchiveOperations):
    backup_check_seconds: float = float(os.environ.get("AURORAL_BACKUP_CHECK_SECONDS") or 60)
    _backup_task: asyncio.Task[None] | None = None

    def start_backup_schedule(self) -> None:
        if self.snapshot_dir is None:
            return
        if self._backup_task is None or self._backup_task.done():
            self._backup_task = asyncio.get_running_loop().create_task(self._backup_loop(), name="rds backups")

    async def stop_backup_schedule(self) -> None:
        task, self._backup_task = self._backup_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _backup_loop(self) -> None:
        while True:
            try:
                self.backup_tick(utcnow())
            except Exception:
                log.exception("the automated backup schedule failed")
            await asyncio.sleep(self.backup_check_seconds)

    def backup_tick(self, now: datetime) -> None:
        """Start the automated snapshots that are due; delete the expired ones (of clusters that exist:
        a deleted cluster's retained ones go by DeleteAutomatedBackups)."""
        snapshots = self._snapshots(None)
        for cluster in self._clusters(None):
            mine = [s for s in snapshots if s.cluster_resource_id == cluster.resource_id and s.snapshot_type == AUTOMATED]
            for snap in mine:
                if snap.status in ("available", "failed") and expired(snap, cluster.backup_retention_period, now):
                    log.info("cluster %s: automated snapshot %s expired", cluster.identifier, snap.identifier)
                    self._delete_snapshot(snap)
            self._expire_wal(cluster, now)
            mine = [s for s in mine if s.status != "deleting"]
            if cluster.status != "available" or any(s.status == "creating" for s in mine):
                continue
            if not any(s.status == "available" for s in mine):
                # never backed up: at once, or an hour after a failed first backup (which it replaces)
                if all(s.created <= now - FIRST_BACKUP_RETRY for s in mine):
                    for failed in mine:
                        self._delete_snapshot(failed)
                    self._start_automated(cluster, now, first=True)
                continue
            last = max((s.created for s in mine if s.status != "failed"), default=None)
            if backup_due(cluster, last, now):
                self._start_automated(cluster, now)

    def _first_backup(self, cluster: Cluster) -> None:
        if self.snapshot_dir is not None and self.storage_keys is not None and cluster.status == "available":
            self._start_automated(cluster, utcnow(), first=True)

    def _start_automated(self, cluster: Cluster, now: datetime, *, first: bool = False) -> None:
        """An automated snapshot of ``cluster``, recorded ``creating`` before the backup starts."""
        name = automated_name(cluster, now)
        if self._get_snapshot(cluster.account, name) is not None:
            return
        snap = self._new_snapshot(cluster, name, dict(cluster.tags) if cluster.copy_tags_to_snapshot else {},
                                  AUTOMATED)
        self._save_snapshot(snap)  # "creating", before the backup
        log.info("cluster %s: automated snapshot %s%s", cluster.identifier, name, " (its first)" if first else "")
        self._spawn_snapshot(cluster, snap, lock=f"backup:{cluster.resource_id}" if first else None)
