"""A major version upgrade of a stopped primary with ``pg_upgrade``, and the recovery of one interrupted by a
restart of auroral (``settle_upgrade``, ``stop_upgrade_leftovers``).

Separate because its crash safety is its own: a marker written first, a new data directory filled beside the
old one and swapped in only when complete; the directory names below are the contract between the upgrade
and its settling at the next start (``local.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from importlib import resources
from pathlib import Path

from auroral.engine import bootstrap, conf, fsafe, postmaster, proc
from auroral.engine.binaries import Installation
from auroral.engine.errors import ServerStateError
from auroral.engine.osuser import check_traversable, make_private_dir
from auroral.engine.server_conf import PARAMS_JSON, ServerConfig
from auroral.engine.template import WAL_SEGMENT_MB

log = logging.getLogger(__name__)
# A major version upgrade (PgServer.upgrade_major): the marker holds the target major while pg_upgrade
# fills UPGRADE_DIR; the old data directory becomes OLD_DIR only once the new one is complete.
UPGRADE_MARKER = ".upgrading"
UPGRADE_DIR = "pgdata.upgrade"
OLD_DIR = "pgdata.old"
_UPGRADE_WORK = "upgrade-work"


class MajorUpgrade(ServerConfig):
    """``pg_upgrade`` and the role options of the new major for :class:`~auroral.engine.cluster.PgServer`."""

    # ---- major version upgrade ---------------------------------------------------------------------

    async def upgrade_major(self, target: Installation) -> None:
        """``pg_upgrade`` this stopped primary's data directory to ``target``'s major, as the server's OS
        user. Crash-safe: the marker is written first; pg_upgrade (copy mode) fills ``pgdata.upgrade`` while
        ``pgdata`` stays untouched; only a complete new directory is swapped in (``pgdata`` → ``pgdata.old``,
        ``pgdata.upgrade`` → ``pgdata``). :func:`settle_upgrade` finishes or undoes an interrupted swap and
        removes ``pgdata.old`` once the new directory is in place. On return the server is stopped, on
        ``target``. Roles, passwords (rdsadmin's too) and every database come across; the Aurora functions
        in ``pg_catalog`` are not dumped by pg_upgrade and are installed again by the next start."""
        async with self._lock:
            if self.pid is not None or self._status == "not-initialized":
                raise ServerStateError(f"server {self.server_id} must be stopped (and exist) to be upgraded")
            if self.standby is not None:
                raise ServerStateError(f"server {self.server_id} is a standby: only a primary is upgraded")
            if target.major <= self.major:
                raise ServerStateError(f"PostgreSQL {self.major} cannot be upgraded to {target.major}")
            old = self.installation
            new = self.cluster_dir / UPGRADE_DIR
            work = self.cluster_dir / _UPGRADE_WORK
            settle_upgrade(self.cluster_dir)
            # recorded before acting: a restart finds the marker and settles (settle_upgrade)
            fsafe.write_file(self.cluster_dir / UPGRADE_MARKER, f"{target.major}\n".encode())
            await postmaster.clear_leftovers(self.pgdata)
            for leftover in (new, work):
                shutil.rmtree(leftover, ignore_errors=True)
            make_private_dir(new, self.runas)
            make_private_dir(work, self.runas)
            make_private_dir(self.socket_dir, self.runas)
            check_traversable(self.cluster_dir, self.runas)
            # the same initdb as the templates (rdsadmin as the bootstrap superuser, 1 MB WAL segments), with
            # data checksums as the old directory has them (pg_upgrade needs both alike; 18's initdb turns
            # them on by default)
            checksums = (await self.control_data()).get("Data page checksum version", "0") != "0"
            flags = [f"--wal-segsize={WAL_SEGMENT_MB}"]
            if checksums:
                flags.append("--data-checksums")
            elif target.major >= 18:
                flags.append("--no-data-checksums")
            await postmaster.initdb(target, new, self.runas, tuple(flags))
            # pg_upgrade logs in as rdsadmin over the private socket (only the cluster's OS user reaches it)
            conf.write(self.pgdata / "pg_hba.conf", conf.hba_conf("bootstrap"), self.runas)
            conf.write(new / "pg_hba.conf", conf.hba_conf("bootstrap"), self.runas)
            self._write_local_conf()  # the old server starts under pg_upgrade with its own settings
            started = time.monotonic()
            try:
                await postmaster.run_tool(target, "pg_upgrade", [
                    "-b", str(old.bindir), "-B", str(target.bindir), "-d", str(self.pgdata), "-D", str(new),
                    "-U", conf.ADMIN_PLACEHOLDER, "-s", str(self.socket_dir), "-j", str(os.cpu_count() or 1),
                ], self.runas, cwd=work)
            except BaseException:
                shutil.rmtree(new, ignore_errors=True)
                shutil.rmtree(work, ignore_errors=True)
                fsafe.remove_file(self.cluster_dir / UPGRADE_MARKER)
                raise
            log.info("server %s: pg_upgrade %s -> %s took %.1f s", self.server_id, old.major, target.major,
                     time.monotonic() - started)
            # auroral's configuration files: the includes, the new major's base settings, the parameter
            # group values and the IAM users of the old directory
            conf.write(new / "postgresql.conf", conf.read(new / "postgresql.conf") + conf.INCLUDES, self.runas)
            conf.write(new / conf.BASE_FILE, conf.base_conf(target.major), self.runas)
            for name in (PARAMS_JSON, conf.PARAMS_FILE, conf.IAM_USERS_FILE):
                with contextlib.suppress(FileNotFoundError):
                    conf.write(new / name, conf.read(self.pgdata / name), self.runas)
            # pg_upgrade synced the new directory before it exited; conf.write fsyncs each file
            _fsync_dir(new)
            os.rename(self.pgdata, self.cluster_dir / OLD_DIR)
            os.rename(new, self.pgdata)
            _fsync_dir(self.cluster_dir)
            shutil.rmtree(work, ignore_errors=True)
            self.installation = target
            self._set_status("stopped", f"upgraded to PostgreSQL {target.major}")

    async def rebootstrap(self, master_username: str) -> None:
        """After a major upgrade: what the bootstrap does differently per major (role options of 16+), and
        the master's ``rds_superuser`` membership as that major grants it."""
        files = resources.files("auroral.engine") / "sql"
        specific = (files / ("bootstrap-16.sql" if self.major >= 16 else "bootstrap-pre16.sql")).read_text(
            encoding="utf-8")
        async with await postmaster.connect(self.socket_dir, self._admin_password) as connection:
            await connection.execute(specific.encode())
            cursor = await connection.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s",
                                              (master_username,))
            if await cursor.fetchone() is not None:
                await connection.execute(bootstrap.grant_rds_superuser(master_username, self.major))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def stop_upgrade_leftovers(cluster_dir: Path) -> None:
    """Before :func:`settle_upgrade` at recovery: a ``pg_upgrade`` (and the programs it runs, all working in
    its work directory) that outlived a killed auroral is killed, and the postmasters it started are
    stopped, so that nothing writes the directories being settled."""
    if not (cluster_dir / UPGRADE_MARKER).exists():
        return
    work = cluster_dir / _UPGRADE_WORK
    if work.is_dir():
        deadline = time.monotonic() + 10
        while (left := proc.processes_in(work)) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.05)
    for pgdata in (cluster_dir / UPGRADE_DIR, cluster_dir / "pgdata"):
        if pgdata.is_dir():
            await postmaster.clear_leftovers(pgdata)


def settle_upgrade(cluster_dir: Path) -> str | None:
    """Finish or undo an interrupted major upgrade of the server in ``cluster_dir`` (see
    :meth:`PgServer.upgrade_major`); returns what was done (None: nothing was interrupted). Never loses
    data: the old directory goes only once the new, complete one is ``pgdata``."""
    marker = cluster_dir / UPGRADE_MARKER
    if not marker.exists():
        return None
    pgdata, new, old = cluster_dir / "pgdata", cluster_dir / UPGRADE_DIR, cluster_dir / OLD_DIR
    if pgdata.exists() and new.exists():
        done = "an unfinished pg_upgrade was discarded (the old data directory is in place)"
        shutil.rmtree(new)
    elif pgdata.exists():
        done = "the upgraded data directory is in place; the old one was removed"
    elif new.exists():  # both renames were due; the new directory was complete before the first
        os.rename(new, pgdata)
        done = "the upgraded data directory was put in place; the old one was removed"
    elif old.exists():
        os.rename(old, pgdata)
        done = "the old data directory was put back"
    else:
        done = "no data directory found"
    _fsync_dir(cluster_dir)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(cluster_dir / _UPGRADE_WORK, ignore_errors=True)
    fsafe.remove_file(marker)
    return done

