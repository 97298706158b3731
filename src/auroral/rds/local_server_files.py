"""What a cluster's servers leave in their directories for :class:`~auroral.rds.local_runtime.LocalRuntime`
to collect or clear: the finished WAL files PostgreSQL's archiver copies into each server's spool, handed to
the WAL archive (``rds/wal_archive.py``) and removed once stored, and PostgreSQL's own log files, expired
after the cluster's ``rds.log_retention_period``.

Separate because both are background loops over files another OS user can write: read through ``fsafe``
in worker threads, never on the event loop, and never following a link.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg

from auroral.engine import EngineError, fsafe, logfiles
from auroral.rds.local_replicas import ReplicaSet, first_line
from auroral.rds.model import Cluster, Instance
from auroral.rds.runtime import RuntimeFailure

log = logging.getLogger(__name__)

LOG_EXPIRY_SECONDS = 60.0
# cluster rid, WAL file name, its content, when it was archived -> stored? (a coroutine: its CPU and disk
# work goes to a worker thread, not the event loop)
WalListener = Callable[[str, str, bytes, float], Awaitable[bool]]
WAL_SHIP_SECONDS = 1.0
# what an archiver leaves in its spool: segments (24 hex digits), timeline histories, backup labels
WAL_FILE = re.compile(r"[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history")
WAL_FILE_LIMIT = 64 << 20


def _spooled(spool: Path) -> list[str]:
    """The WAL files an archiver left in ``spool``, oldest first (blocking)."""
    return sorted(n for n in os.listdir(spool) if WAL_FILE.fullmatch(n))


def _read_spooled(spool: Path, name: str) -> tuple[float, bytes]:
    """(when it was archived, content) of a spooled WAL file, never following a symlink (blocking)."""
    with fsafe.directory(spool) as dfd:
        archived_at = os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mtime
    return archived_at, fsafe.read_bytes(spool / name, limit=WAL_FILE_LIMIT)


class ServerFiles(ReplicaSet):
    """WAL shipping and log expiry for ``LocalRuntime`` (a mixin: ``LocalRuntime.__init__`` sets these)."""

    _parameters: dict[str, dict[str, str]]
    _wal_listeners: list[WalListener]
    _ship_task: asyncio.Task[None] | None
    _ship_locks: dict[str, asyncio.Lock]  # cluster rid -> one shipper at a time (loop, flush)

    # --- continuous WAL archiving: the archivers' spools into the WAL archive (rds/wal_archive.py) ------

    def add_wal_listener(self, fn: WalListener) -> None:
        """``fn(cluster_rid, name, data, archived_at) -> bool``: a finished WAL file of a cluster's server;
        True once it is stored (the spool copy is then removed), False to be offered it again later."""
        self._wal_listeners.append(fn)

    def _start_shipping(self) -> None:
        if self._ship_task is None or self._ship_task.done():
            self._ship_task = asyncio.get_running_loop().create_task(self._ship_loop(), name="wal-shipping")

    async def _ship_loop(self) -> None:
        while True:
            await asyncio.sleep(WAL_SHIP_SECONDS)
            for cluster in list(self._clusters.values()):
                try:
                    await self.ship_wal(cluster)
                except Exception:
                    log.exception("cluster %s: shipping WAL failed", cluster.identifier)

    async def ship_wal(self, cluster: Cluster) -> int:
        """Hand every finished WAL file in the spools of the cluster's servers to the listeners, oldest first;
        how many were stored. The spools belong to the cluster's OS user: read through fsafe (no symlinks,
        regular files only), names checked. The reads and removals run in a worker thread (a segment is 16 MB:
        the event loop keeps serving meanwhile), one shipper per cluster at a time; a file leaves the spool
        only once a listener has stored it."""
        if not self._wal_listeners:
            return 0
        lock = self._ship_locks.setdefault(cluster.resource_id, asyncio.Lock())
        async with lock:
            stored = 0
            for server in self._engine.servers_of(cluster.resource_id):
                spool = server.wal_spool
                try:
                    names = await asyncio.to_thread(_spooled, spool)
                except OSError:
                    continue
                for name in names:
                    try:
                        archived_at, data = await asyncio.to_thread(_read_spooled, spool, name)
                    except OSError as exc:
                        log.warning("cluster %s: WAL file %s unreadable: %s", cluster.identifier, name, exc)
                        continue
                    if await self._offer_wal(cluster.resource_id, name, data, archived_at):
                        await asyncio.to_thread(fsafe.remove_file, spool / name)
                        stored += 1
                    else:
                        break  # in order: the next ones wait for this one
            return stored

    async def _offer_wal(self, rid: str, name: str, data: bytes, archived_at: float) -> bool:
        for listener in self._wal_listeners:
            if await listener(rid, name, data, archived_at):
                return True
        return False

    async def flush_wal(self, cluster: Cluster, timeout: float = 30.0) -> bool:
        """Make the primary's WAL up to now archived and stored (a commit record of now first): for a restore
        to the latest restorable time. False if that did not happen in time (or the primary does not run)."""
        try:
            primary = self._server(cluster)
        except (EngineError, RuntimeFailure):
            return False
        if primary.status() != "running":
            return False
        self._start_shipping()
        try:
            name = await primary.switch_wal()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                done = await primary.archived_up_to()
                if done is not None and done[:24] >= name:
                    await self.ship_wal(cluster)
                    return True
                await asyncio.sleep(0.1)
        except (EngineError, psycopg.Error) as exc:
            log.warning("cluster %s: flushing WAL failed: %s", cluster.identifier, first_line(exc))
        return False

    # --- log files (engine/logfiles.py; the RDS API's side: rds/logs.py) ----------------------------

    def log_directory(self, cluster: Cluster, instance: Instance) -> Path | None:
        server = self.server_of(cluster, instance)
        return None if server is None else server.log_dir

    async def _expire_logs(self) -> None:
        """Every :data:`LOG_EXPIRY_SECONDS`: each server's log files last written longer ago than its
        cluster's ``rds.log_retention_period`` minutes are removed (the newest file always stays)."""
        while True:
            await asyncio.sleep(LOG_EXPIRY_SECONDS)
            for rid in list(self._clusters):
                value = self._parameters.get(rid, {}).get("rds.log_retention_period", "")
                minutes = int(value) if value.isascii() and value.isdigit() else logfiles.DEFAULT_RETENTION_MINUTES
                for server in self._engine.servers_of(rid):
                    try:
                        removed = await asyncio.to_thread(logfiles.expire, server.log_dir, minutes)
                    except OSError as exc:
                        log.warning("server %s: log files not expired: %s", server.server_id, exc)
                        continue
                    if removed:
                        log.info("server %s: expired log files %s", server.server_id, ", ".join(removed))

