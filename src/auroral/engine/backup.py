"""Backups out of and restores into a server: a base backup streamed as one tar (snapshots), a new server
unpacked from one, optionally replaying archived WAL to a point in time, and the WAL switches that
continuous archiving needs (``rds/snapshots.py`` and ``rds/wal_archive.py`` keep the bytes).

Separate because these stream bytes through subprocesses (``pg_basebackup``, ``tar``) with their own
failure handling, unlike the rest of the engine, which runs tools to completion.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg

from auroral.engine import aurora, bootstrap, conf, fsafe, postmaster
from auroral.engine.errors import ServerStartError, ServerStateError
from auroral.engine.lifecycle import ServerLifecycle
from auroral.engine.osuser import make_private_dir
from auroral.engine.server_base import CLONING_MARKER, Recovery

WAL_RESTORE = "walrestore"


class Backups(ServerLifecycle):
    """Base backups, restores and WAL switching for :class:`~auroral.engine.cluster.PgServer`."""

    async def base_backup(self, sink: Callable[[bytes], Any]) -> None:
        """A consistent copy of this running server's data directory, as one tar stream handed to ``sink``
        chunk by chunk (``sink`` may be a coroutine function): ``pg_basebackup -Ft -X fetch`` to stdout over
        the private socket as the replication role (peer), with a fast checkpoint. The server keeps serving;
        the tar holds the WAL needed to make the copy consistent (a restored server replays it at its first
        start). Nothing is written to disk here: what the sink does with the bytes is its business."""
        if self._status != "running":
            raise ServerStateError(f"server {self.server_id} is {self._status}")
        async with await postmaster.connect(self.socket_dir, self._admin_password) as connection:
            for statement in bootstrap.ENSURE_REPLICATION_ROLE:
                await connection.execute(statement.encode())
        process = await asyncio.create_subprocess_exec(
            str(self.installation.tool("pg_basebackup")),
            "-d", (f"host={self.socket_dir} port={conf.PORT} user={conf.REPLICATION_ROLE} "
                   f"application_name={self.server_id}-snapshot"),
            "-D", "-", "-F", "t", "-X", "fetch", "-c", "fast", "-w", "--no-manifest",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd="/", env=postmaster.tool_env(), **self.runas.subprocess_kwargs(),
        )
        assert process.stdout is not None and process.stderr is not None
        errors = asyncio.create_task(process.stderr.read())
        try:
            while True:
                chunk = await process.stdout.read(1 << 18)
                if not chunk:
                    break
                result = sink(chunk)
                if asyncio.iscoroutine(result):
                    await result
        except BaseException:
            await _abandon(process, errors)
            raise
        await _finished(process, errors, "pg_basebackup")

    async def restore_backup(self, chunks: AsyncIterator[bytes], wal: AsyncIterator[tuple[str, bytes]] | None = None,
                             target_time: str | None = None) -> None:
        """Make this (not yet initialized) server from a tar stream made by :meth:`base_backup` (of another
        cluster's server) and start it as a primary: the tar is unpacked by ``tar`` running as this server's
        OS user into its own new data directory; the first start replays the WAL in it (``backup_label``).
        Leaves it running. While it is unpacked the cloning marker says so (a restart removes a half copy).

        With ``wal`` (archived segments, by name): a point-in-time restore. The segments go to a private
        directory of the server's user, the server starts in archive recovery (``recovery.signal``,
        ``restore_command``) up to ``target_time`` (None: to the end of the archive) and is promoted; then the
        directory goes and the server runs as a primary of a timeline of its own."""
        async with self._lock:
            if self._status != "not-initialized":
                raise ServerStateError(f"server {self.server_id} is already initialized ({self._status})")
            self._set_status("starting", "restoring")
            try:
                self._make_cluster_dir()
                fsafe.write_file(self.cluster_dir / CLONING_MARKER, b"")
                await postmaster.clear_leftovers(self.pgdata)
                shutil.rmtree(self.pgdata, ignore_errors=True)
                make_private_dir(self.pgdata, self.runas)
                process = await asyncio.create_subprocess_exec(
                    shutil.which("tar") or "/bin/tar", "-x", "-f", "-", "-C", str(self.pgdata),
                    "--no-same-owner", "--no-overwrite-dir",
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE, cwd="/", **self.runas.subprocess_kwargs(),
                )
                assert process.stdin is not None and process.stderr is not None
                errors = asyncio.create_task(process.stderr.read())
                try:
                    async for chunk in chunks:
                        process.stdin.write(chunk)
                        await process.stdin.drain()
                    process.stdin.close()
                except BaseException:
                    await _abandon(process, errors)
                    raise
                await _finished(process, errors, "tar")
                for leftover in ("postmaster.pid", conf.STANDBY_SIGNAL, "recovery.signal"):
                    fsafe.remove_file(self.pgdata / leftover)
                self.standby = None
                if wal is not None:
                    restore_dir = self.cluster_dir / WAL_RESTORE
                    shutil.rmtree(restore_dir, ignore_errors=True)
                    make_private_dir(restore_dir, self.runas)
                    uid, gid = self.runas.ownership()
                    async for name, data in wal:
                        await asyncio.to_thread(fsafe.write_file, restore_dir / name, data, uid=uid, gid=gid)
                    self.recovery = Recovery(restore_dir, target_time)
                await postmaster.sync(self.installation, self.pgdata, self.runas)
                await self._launch("final")
                if self.recovery is not None:
                    await self._finish_recovery()
                fsafe.remove_file(self.cluster_dir / CLONING_MARKER)
            except BaseException as exc:
                await self._halt()
                self._set_status("failed", f"restore failed: {exc}")
                raise
            self._want_running = True
            self._supervisor = asyncio.create_task(self._supervise(), name=f"supervise-{self.server_id}")
            self._set_status("running")

    async def _finish_recovery(self, timeout: float = 900.0) -> None:
        """Wait until the archive recovery has ended (promoted at its target or at the archive's end), then
        run as a primary: the recovery settings go, the Aurora functions and the replication role come."""
        deadline = time.monotonic() + timeout
        while True:
            process = self._process
            if process is None or process.returncode is not None:
                raise ServerStartError("the server stopped during the point-in-time recovery",
                                       postmaster.log_tail(self.log_path))
            try:
                rows = await self.run_admin_sql("SELECT pg_catalog.pg_is_in_recovery()")
                if rows and rows[0][0] is False:
                    break
            except psycopg.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise ServerStartError("the point-in-time recovery did not end in time",
                                       postmaster.log_tail(self.log_path))
            await asyncio.sleep(0.2)
        restore_dir = self.recovery.restore_dir if self.recovery is not None else None
        self.recovery = None
        self._write_local_conf()
        await self.run_admin_sql("SELECT pg_catalog.pg_reload_conf()")
        await aurora.install(lambda dbname: postmaster.connect(self.socket_dir, self._admin_password, dbname))
        async with await postmaster.connect(self.socket_dir, self._admin_password) as connection:
            for statement in bootstrap.ENSURE_REPLICATION_ROLE:
                await connection.execute(statement.encode())
        if restore_dir is not None:
            shutil.rmtree(restore_dir, ignore_errors=True)

    async def switch_wal(self) -> str:
        """Close the current WAL segment after a commit record of now (so that a point-in-time restore to any
        earlier moment finds a commit after it); the name of the segment to be archived."""
        await self.run_admin_sql("SELECT pg_catalog.txid_current()")  # a commit record, now
        rows = await self.run_admin_sql("SELECT pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn())")
        await self.run_admin_sql("SELECT pg_catalog.pg_switch_wal()")
        return str(rows[0][0])

    async def archived_up_to(self) -> str | None:
        """The last WAL file the archiver handed over (``pg_stat_archiver``)."""
        rows = await self.run_admin_sql("SELECT last_archived_wal FROM pg_catalog.pg_stat_archiver")
        return str(rows[0][0]) if rows and rows[0][0] else None


async def _abandon(process: asyncio.subprocess.Process, errors: asyncio.Task[bytes]) -> None:
    """A streaming tool whose stream failed: killed and reaped, its stderr reader dropped."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()
    errors.cancel()


async def _finished(process: asyncio.subprocess.Process, errors: asyncio.Task[bytes], tool: str) -> None:
    """Wait for a streaming tool; its exit code and stderr's tail as ``ServerStartError`` if it failed."""
    code = await process.wait()
    text = (await errors).decode("utf-8", errors="replace")
    if code != 0:
        raise ServerStartError(f"{tool} failed with exit code {code}", text[-4000:])
