"""Streaming replication between a cluster's servers: a standby made with ``pg_basebackup`` from the primary,
its slot there, its WAL positions, following another primary, promotion and ``pg_rewind`` of a former
primary (see ``cluster.py``: *Standbys*).

Separate because it is what one server does with another (the rest of the engine serves one server alone);
``rds/local_replicas.py`` drives it for failover.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from auroral.engine import aurora, bootstrap, conf, fsafe, postmaster
from auroral.engine.errors import ServerStateError
from auroral.engine.lifecycle import ServerLifecycle
from auroral.engine.osuser import make_private_dir
from auroral.engine.server_base import CLONING_MARKER, Standby

if TYPE_CHECKING:
    from auroral.engine.cluster import PgServer


@dataclass(frozen=True)
class WalPosition:
    """A server's WAL positions as ``pg_lsn`` text (``None`` where it has none: a primary receives nothing)."""

    in_recovery: bool
    received: str | None
    replayed: str | None
    current: str | None


def lsn_value(lsn: str) -> int:
    """``'16/B374D848'`` as a number (for comparisons)."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


class Replication(ServerLifecycle):
    """Standbys, slots, following and promotion for :class:`~auroral.engine.cluster.PgServer`."""

    async def create_replica(self, primary: PgServer, slot: str) -> None:
        """Make this (not yet initialized) server a hot standby of ``primary``: a physical slot there,
        ``pg_basebackup`` over the primary's private socket as the replication role (peer: both run as the
        cluster's OS user), then a start as a standby. Leaves it running."""
        async with self._lock:
            if self._status != "not-initialized":
                raise ServerStateError(f"server {self.server_id} is already initialized ({self._status})")
            self._set_status("starting", "creating replica")
            try:
                self._make_cluster_dir()
                # until the clone runs: a restart of auroral finds a half-made copy and removes it
                fsafe.write_file(self.cluster_dir / CLONING_MARKER, b"")
                await postmaster.clear_leftovers(self.pgdata)
                shutil.rmtree(self.pgdata, ignore_errors=True)  # a create interrupted earlier
                make_private_dir(self.pgdata, self.runas)
                await primary.ensure_slot(slot)
                await postmaster.run_tool(self.installation, "pg_basebackup", [
                    "-d", (f"host={primary.socket_dir} port={conf.PORT} user={conf.REPLICATION_ROLE} "
                           f"application_name={self.server_id}-clone"),
                    "-D", str(self.pgdata), "-X", "stream", "-S", slot, "-c", "fast", "-w",
                ], self.runas)
                self.standby = Standby(primary.socket_dir, slot)
                await self._launch("final")
                fsafe.remove_file(self.cluster_dir / CLONING_MARKER)
            except BaseException as exc:
                await self._halt()
                self._set_status("failed", f"create failed: {exc}")
                raise
            self._want_running = True
            self._supervisor = asyncio.create_task(self._supervise(), name=f"supervise-{self.server_id}")
            self._set_status("running")

    async def ensure_slot(self, slot: str) -> None:
        """A physical replication slot ``slot`` on this primary, reserving WAL from now on; a slot of
        that name left by an earlier attempt is replaced. The replication role is made sure of too."""
        if self._status not in ("running", "starting"):
            raise ServerStateError(f"server {self.server_id} is {self._status}")
        async with await postmaster.connect(self.socket_dir, self._admin_password) as connection:
            for statement in bootstrap.ENSURE_REPLICATION_ROLE:
                await connection.execute(statement.encode())
            await _drop_slot(connection, slot)
            await connection.execute("SELECT pg_catalog.pg_create_physical_replication_slot(%s, true)", (slot,))

    async def drop_slot(self, slot: str) -> None:
        """Drop the slot (ending the walsender using it first); nothing if there is none."""
        if self._status not in ("running", "starting"):
            raise ServerStateError(f"server {self.server_id} is {self._status}")
        async with await postmaster.connect(self.socket_dir, self._admin_password) as connection:
            await _drop_slot(connection, slot)

    async def wal_position(self) -> WalPosition:
        rows = await self.run_admin_sql(
            "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.pg_last_wal_receive_lsn()::text, "
            "pg_catalog.pg_last_wal_replay_lsn()::text, "
            "CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_current_wal_lsn()::text END")
        in_recovery, received, replayed, current = rows[0]
        return WalPosition(bool(in_recovery), received, replayed, current)

    async def follow(self, standby: Standby | None) -> None:
        """Stream from another primary from now on: a running standby reloads (PostgreSQL 13+ restarts
        its walreceiver with the new source); a stopped one takes it at its next start. ``None``: this
        server is the primary (takes effect at its next start)."""
        async with self._lock:
            self.standby = standby
            if self._status == "not-initialized":
                return
            self._write_local_conf()
            if self._status == "running" and self.pid is not None:
                await self.run_admin_sql("SELECT pg_catalog.pg_reload_conf()")

    async def promote(self) -> None:
        """End recovery: this standby becomes a primary on a new timeline (``pg_promote`` waits for it).
        Then the Aurora functions are (re)installed and the standby settings cleared."""
        async with self._lock:
            rows = await self.run_admin_sql("SELECT pg_catalog.pg_promote(true, 60)")
            if not rows or rows[0][0] is not True:
                raise ServerStateError(f"server {self.server_id} was not promoted within 60 s")
            self.standby = None
            self._write_local_conf()
            await self.run_admin_sql("SELECT pg_catalog.pg_reload_conf()")
        await aurora.install(lambda dbname: postmaster.connect(self.socket_dir, self._admin_password, dbname))

    async def rewind(self, source: PgServer) -> None:
        """Make this stopped former primary, which may hold WAL the new primary ``source`` never got (it
        crashed), a copy of ``source`` from their point of divergence on: ``pg_rewind`` over ``source``'s
        private socket as the replication role (peer), which first completes this server's crash recovery
        if it stopped uncleanly. Possible because ``wal_log_hints`` is on. Start it as a standby next."""
        async with self._lock:
            if self.pid is not None:
                raise ServerStateError(f"server {self.server_id} must be stopped to be rewound")
            await postmaster.clear_leftovers(self.pgdata)
            self._write_local_conf()  # pg_rewind's single-user recovery reads our configuration
            fsafe.remove_file(self.pgdata / conf.STANDBY_SIGNAL)
            await postmaster.run_tool(self.installation, "pg_rewind", [
                "-D", str(self.pgdata), "--source-server",
                f"host={source.socket_dir} port={conf.PORT} user={conf.REPLICATION_ROLE} dbname=postgres",
            ], self.runas)


async def _drop_slot(connection: psycopg.AsyncConnection[tuple[object, ...]], slot: str) -> None:
    """Drop a replication slot if it exists, ending the walsender that uses it first (which takes a moment)."""
    deadline = time.monotonic() + 10
    while True:
        await connection.execute(
            "SELECT pg_catalog.pg_terminate_backend(active_pid) FROM pg_catalog.pg_replication_slots "
            "WHERE slot_name = %s AND active_pid IS NOT NULL", (slot,))
        try:
            await connection.execute(
                "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots "
                "WHERE slot_name = %s", (slot,))
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)

