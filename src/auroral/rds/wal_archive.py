"""Point-in-time restore: continuous WAL archiving into an encrypted archive, the restorable window
(``EarliestRestorableTime`` / ``LatestRestorableTime``) and RestoreDBClusterToPointInTime.

Every server archives each finished WAL segment (``archive_command``: a copy into a spool directory of the
cluster's own OS user, as private as its data directory); the runtime hands each file here
(``LocalRuntime.ship_wal``, every second), where it is compressed and sealed in a worker thread
(``rds/envelope.py``) under the cluster's WAL data key — wrapped by the cluster's KMS key, or the master key
for an unencrypted cluster — into ``<data_dir>/snapshots/wal/<DbClusterResourceId>/<name>.wal`` (its mtime:
when PostgreSQL archived it), and only then removed from the spool. A cluster whose key is not usable keeps
its WAL in the spool until it is.

A restore to time T starts from the newest snapshot of the source taken at or before T (manual or automated:
``EarliestRestorableTime`` is the oldest one's, normally the cluster's first backup, taken at its creation)
and replays the archived WAL up to T (``recovery_target_time``) in the new cluster's server;
``UseLatestRestorableTime`` first makes the running source archive its WAL up to now (a commit record,
``pg_switch_wal``) and replays all of it. ``RestoreType`` ``copy-on-write`` is a full copy here (auroral has
no shared storage volume). WAL older than what the retention period needs goes with the automated snapshots'
expiry (``backups.py``); the archive goes with its cluster unless DeleteAutomatedBackups=false.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from auroral.api.context import RequestContext
from auroral.errors import AwsError, invalid_parameter_combination, invalid_parameter_value
from auroral.rds import validate
from auroral.rds.base import rds_error
from auroral.rds.envelope import SealedArtifactError, SealedWriter, read_sealed
from auroral.rds.model import Cluster, new_resource_id, utcnow
from auroral.rds.runtime import IncompatibleParameters, RuntimeFailure
from auroral.rds.snapshot_model import ClusterSnapshot
from auroral.rds.snapshots import SnapshotError, SnapshotOperations, _chunks
from auroral.rds.storage_keys import KeyUnusable, StorageKeys, WrappedKey

log = logging.getLogger("auroral.rds")

KIND_WAL_KEY = "rds.wal-key"
_SUFFIX = ".wal"


def _bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise invalid_parameter_value(f"Invalid RestoreToTime: {value}") from None  # Unconfirmed wording.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def invalid_restore(message: str) -> AwsError:
    return rds_error("InvalidRestoreFault", message)


class WalArchiveOperations(SnapshotOperations):
    _wal_key_cache: dict[str, bytes] | None = None

    def attach_snapshots(self, keys: StorageKeys, directory: Path) -> None:
        super().attach_snapshots(keys, directory)
        self.runtime.add_wal_listener(self._on_wal)

    # --- the archive ---------------------------------------------------------------------------------

    def _wal_dir(self, rid: str) -> Path:
        assert self.snapshot_dir is not None
        return self.snapshot_dir / "wal" / rid

    @staticmethod
    def _wal_context(rid: str) -> dict[str, str]:
        return {"aws:rds:wal-archive": rid}

    def _wal_key(self, cluster: Cluster) -> bytes:
        cache = self._wal_key_cache
        if cache is None:
            cache = self._wal_key_cache = {}
        if cluster.resource_id in cache:
            return cache[cluster.resource_id]
        keys = self._keys()
        context = self._wal_context(cluster.resource_id)
        doc = self.store.get(KIND_WAL_KEY, cluster.account, cluster.resource_id)
        if doc is None:
            data_key, wrapped = keys.new_data_key(cluster.account, cluster.kms_key_id, context)
            self.store.put(KIND_WAL_KEY, cluster.account, cluster.resource_id,
                           {**wrapped.to_doc(), "kms_key_id": cluster.kms_key_id})
        else:
            data_key = keys.open_data_key(cluster.account, doc.get("kms_key_id"), WrappedKey.from_doc(doc), context)
        cache[cluster.resource_id] = data_key
        return data_key

    def _open_wal_key(self, account: str, rid: str) -> bytes:
        doc = self.store.get(KIND_WAL_KEY, account, rid)
        if doc is None:
            raise SnapshotError("the cluster has no archived WAL")
        return self._keys().open_data_key(account, doc.get("kms_key_id"), WrappedKey.from_doc(doc),
                                          self._wal_context(rid))

    async def _on_wal(self, rid: str, name: str, data: bytes, archived_at: float) -> bool:
        """A finished WAL file of cluster ``rid``: sealed into the archive (True), or left for later (False:
        not this region's cluster, or its key is not usable now). The records and the key are read here, on
        the event loop; the compression, encryption and write in a worker thread. ``archived_at`` is the
        spooled file's mtime, which the cluster's OS user can set: never later than now (a time in the future
        would move LatestRestorableTime past now, keep the file from expiring, or be no datetime at all)."""
        archived_at = min(max(archived_at, 0.0), time.time())
        if self.snapshot_dir is None or self.storage_keys is None:
            return False
        cluster = self._cluster_by_rid(rid)
        if cluster is None or self.key_problem(cluster) is not None:
            return False
        try:
            data_key = self._wal_key(cluster)
        except (KeyUnusable, AwsError) as exc:
            log.warning("cluster %s: WAL not archived: %s", cluster.identifier, exc)
            return False
        await asyncio.to_thread(_seal_wal, self._wal_dir(rid), name, data, archived_at, data_key)
        if self.store.get(KIND_WAL_KEY, cluster.account, rid) is None:  # the archive went meanwhile
            await asyncio.to_thread(shutil.rmtree, self._wal_dir(rid), True)
            return True
        if not name.endswith("history"):
            latest = self._latest_wal()
            latest[rid] = max(latest.get(rid, 0.0), archived_at)
        return True

    def _latest_wal(self) -> dict[str, float]:
        """Cluster rid -> when its last archived segment was archived (a scan of the directory once, then kept
        up to date as segments arrive): Describe does not list a large archive every time."""
        cache: dict[str, float] | None = self.__dict__.get("_latest_wal_cache")
        if cache is None:
            cache = self.__dict__["_latest_wal_cache"] = {}
        return cache

    def _wal_files(self, rid: str) -> list[tuple[str, float, Path]]:
        """(name, archived at, path) of the cluster's archived WAL files, in name order."""
        if self.snapshot_dir is None:
            return []
        directory = self._wal_dir(rid)
        try:
            entries = [e for e in os.scandir(directory) if e.name.endswith(_SUFFIX) and e.is_file()]
        except OSError:
            return []
        return sorted((e.name[: -len(_SUFFIX)], e.stat().st_mtime, Path(e.path)) for e in entries)

    def _read_wal(self, name: str, path: Path, data_key: bytes) -> bytes:
        raw = b"".join(read_sealed(path, data_key))
        label, sep, body = raw.partition(b"\0")
        if not sep or label != name.encode():
            raise SealedArtifactError(f"{path.name} is not the WAL file it is named after")
        return zlib.decompress(body)

    def restorable_window(self, cluster: Cluster) -> tuple[datetime | None, datetime | None]:
        bases = [s.created for s in self._snapshots(cluster.account)
                 if s.cluster_resource_id == cluster.resource_id and s.status == "available"]
        if not bases:
            return None, None  # nothing to start a restore from
        cache = self._latest_wal()
        if cluster.resource_id not in cache:
            files = [mtime for name, mtime, _ in self._wal_files(cluster.resource_id) if not name.endswith("history")]
            cache[cluster.resource_id] = max(files, default=0.0)
        stamp = cache[cluster.resource_id]
        earliest = min(bases)
        # a backup is restorable by itself (its WAL is in it): the window is never shorter than that
        latest = max(datetime.fromtimestamp(stamp, UTC), earliest) if stamp else earliest
        return earliest, latest

    def view_cluster(self, cluster: Cluster) -> dict[str, Any]:
        view = super().view_cluster(cluster)
        earliest, latest = self.restorable_window(cluster)
        if earliest is not None:
            view["EarliestRestorableTime"] = earliest
            if latest is not None:
                view["LatestRestorableTime"] = latest
        return view

    def _expire_wal(self, cluster: Cluster, now: datetime) -> None:
        """WAL the retention period no longer needs: older than the newest snapshot that is itself older
        than the period (a restore to any time of the period starts at that snapshot or a later one)."""
        cutoff = now - timedelta(days=cluster.backup_retention_period)
        bases = [s.created for s in self._snapshots(cluster.account)
                 if s.cluster_resource_id == cluster.resource_id and s.status == "available" and s.created <= cutoff]
        if not bases:
            return
        keep_from = (max(bases) - timedelta(minutes=5)).timestamp()
        for name, mtime, path in self._wal_files(cluster.resource_id):
            if mtime < keep_from and not name.endswith("history"):
                path.unlink(missing_ok=True)

    def _drop_wal_archive(self, cluster: Cluster) -> None:
        if self.snapshot_dir is not None:
            shutil.rmtree(self._wal_dir(cluster.resource_id), ignore_errors=True)
        self.store.delete(KIND_WAL_KEY, cluster.account, cluster.resource_id)
        self._latest_wal().pop(cluster.resource_id, None)
        if self._wal_key_cache is not None:
            self._wal_key_cache.pop(cluster.resource_id, None)

    def _drop_automated(self, cluster: Cluster) -> None:
        super()._drop_automated(cluster)
        self._drop_wal_archive(cluster)

    # --- RestoreDBClusterToPointInTime ------------------------------------------------------------------

    async def RestoreDBClusterToPointInTime(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        self._keys()  # snapshots supported here at all: the first check, as before
        ident = validate.identifier("DBClusterIdentifier", params.get("DBClusterIdentifier"))
        if params.get("SourceDBClusterIdentifier"):
            source = self._cluster(ctx.account, self.ident(ctx, params["SourceDBClusterIdentifier"], "cluster",
                                                             arn_ok=True))
        elif params.get("SourceDbClusterResourceId"):
            found = self._cluster_by_rid(str(params["SourceDbClusterResourceId"]))
            if found is None or found.account != ctx.account:
                raise rds_error("DBClusterNotFoundFault",
                                f"DBCluster {params['SourceDbClusterResourceId']} not found.")
            source = found
        else:
            # Unconfirmed wording.
            raise invalid_parameter_combination(
                "Either SourceDBClusterIdentifier or SourceDbClusterResourceId must be specified.")
        restore_type = str(params.get("RestoreType") or "full-copy")
        if restore_type not in ("full-copy", "copy-on-write"):
            raise invalid_parameter_value(f"Invalid RestoreType: {restore_type}")  # Unconfirmed wording.
        latest_asked = _bool(params.get("UseLatestRestorableTime"))
        if latest_asked and params.get("RestoreToTime"):
            # Unconfirmed wording.
            raise invalid_parameter_combination("Cannot specify both RestoreToTime and UseLatestRestorableTime.")
        if not latest_asked and not params.get("RestoreToTime"):
            raise invalid_parameter_combination(  # Unconfirmed wording.
                "Either RestoreToTime or UseLatestRestorableTime must be specified.")
        target = None if latest_asked else _when(params["RestoreToTime"])
        new = self._restore_settings(ctx, params, ident, major=source.major, port=source.port,
                                     kms_key_id=source.kms_key_id)
        port, group, tags, retention, window, key_arn = (new.port, new.group, new.tags, new.retention, new.window,
                                                         new.key_arn)
        if source.status == "available":
            await self.runtime.flush_wal(source)  # the archive up to now: LatestRestorableTime is now
        earliest, latest = self.restorable_window(source)
        if earliest is None or latest is None:
            # Unconfirmed wording.
            raise invalid_restore(f"DB cluster {source.identifier} has no backup to restore from: take a snapshot "
                                  "(or wait for the automated backup) first.")
        if target is not None and not earliest <= target <= latest:
            # Unconfirmed wording.
            raise invalid_restore(
                f"The restore time {target.isoformat()} is not within the restorable window of DB cluster "
                f"{source.identifier} ({earliest.isoformat()} to {latest.isoformat()}).")
        moment = target or latest
        base = max((s for s in self._snapshots(ctx.account) if s.cluster_resource_id == source.resource_id
                    and s.status == "available" and s.created <= moment), key=lambda s: s.created)
        placement = self._place(ctx.account, params.get("DBSubnetGroupName"), params.get("VpcSecurityGroupIds"))
        zones = placement.zones or [f"{self.region}{z}" for z in "abc"]
        cluster = Cluster(
            identifier=ident, account=ctx.account, region=self.region, resource_id=new_resource_id("cluster-"),
            engine_version=source.engine_version, major=source.major, master_username=source.master_username,
            created=utcnow(), parameter_group=group, port=port, database_name=source.database_name,
            vpc_security_group_ids=placement.security_group_ids, subnet_group=placement.subnet_group,
            vpc_id=placement.vpc_id, availability_zones=zones,
            storage_encrypted=key_arn is not None, kms_key_id=key_arn,
            backup_retention_period=retention if retention is not None else source.backup_retention_period,
            preferred_backup_window=window or source.preferred_backup_window,
            iam_auth=_bool(params.get("EnableIAMDatabaseAuthentication")),
            deletion_protection=_bool(params.get("DeletionProtection")),
            copy_tags_to_snapshot=_bool(params.get("CopyTagsToSnapshot")), tags=tags,
        )
        self._record_restored(ctx, cluster)
        task = self._spawn_pitr(cluster, source.resource_id, base, target)
        answer = {"DBCluster": self.view_cluster(cluster)}
        await self._settle(task)
        return answer

    def _spawn_pitr(self, cluster: Cluster, source_rid: str, base: ClusterSnapshot,
                    target: datetime | None) -> asyncio.Task[None]:
        rid, account, sid = cluster.resource_id, cluster.account, base.sid
        files = [(name, path) for name, mtime, path in self._wal_files(source_rid)
                 if name.endswith("history") or mtime >= base.created.timestamp() - 5]

        async def wal(data_key: bytes) -> AsyncIterator[tuple[str, bytes]]:
            for name, path in files:
                yield name, await asyncio.to_thread(self._read_wal, name, path, data_key)

        async def work() -> None:
            current = self._cluster_by_rid(rid)
            snap = self._snapshot_by_sid(account, sid)
            if current is None or current.status != "creating":
                return
            try:
                data_key, admin = self._open_snapshot(snap, "the base snapshot is gone")
                assert snap is not None
                wal_key = self._open_wal_key(account, source_rid)
                await self.runtime.restore_cluster(current, _chunks(self._path(snap), data_key), admin,
                                                   wal(wal_key), None if target is None else target.isoformat())
            except IncompatibleParameters as exc:
                await self._incompatible(rid, f"restoring failed: {exc.reason}")
                return
            except (RuntimeFailure, SnapshotError, KeyUnusable, SealedArtifactError, OSError, AwsError,
                    zlib.error) as exc:
                reason = exc.reason if isinstance(exc, RuntimeFailure) else str(exc)
                self._fail_cluster(rid, f"restoring failed: {reason}")
                return
            current = self._cluster_by_rid(rid)
            if current is not None and current.status == "creating":
                current.transition("available")
                self._save_cluster(current)
                self._first_backup(current)

        return self._spawn(rid, "restore-to-point-in-time", work)


def _seal_wal(directory: Path, name: str, data: bytes, archived_at: float, data_key: bytes) -> None:
    """Compress and seal one WAL file into the archive (``<name>.wal``, its mtime when it was archived);
    the file is complete and fsynced before this returns (blocking: a worker thread's)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / (name + _SUFFIX)
    writer = SealedWriter(path, data_key)
    try:
        writer.write(name.encode() + b"\0" + zlib.compress(data, 1))
        writer.close()
    except BaseException:
        writer.abort()
        raise
    os.utime(path, (archived_at, archived_at))



