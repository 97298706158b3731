"""The state every part of :class:`~auroral.engine.cluster.PgServer` shares: what it is (ids, directories,
installation, OS user), its status and the one place that changes it (``_set_status``), and what only reads
or asks the running server (``run_admin_sql``, the IAM users' list, ``pg_controldata``).

Separate so that the other parts (``server_conf``, ``lifecycle``, ``replication``, ``backup``, ``upgrade``)
build on one small base instead of one 1,000-line class: each is a layer of ``PgServer`` that sees only
what is below it (see ``cluster.py`` for the status vocabulary and the directory layout).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from auroral.engine import aurora, bootstrap, conf, logfiles, postmaster
from auroral.engine.binaries import Installation
from auroral.engine.errors import ServerStateError
from auroral.engine.osuser import RunAs
from auroral.engine.template import TemplateStore

Status = Literal["not-initialized", "stopped", "starting", "running", "stopping", "failed"]
StatusCallback = Callable[[str, Status, str], None]
Query = str | bytes | sql.SQL | sql.Composed

log = logging.getLogger(__name__)
WAL_SPOOL = "walspool"
CLONING_MARKER = ".cloning"  # in a server's directory while pg_basebackup fills its data directory


@dataclass(frozen=True)
class RestartPolicy:
    max_attempts: int = 5
    first_delay: float = 0.5
    max_delay: float = 30.0
    stable_after: float = 60.0  # a server up this long has its attempt counter reset

    def delay(self, attempt: int) -> float:
        return float(min(self.first_delay * 2**attempt, self.max_delay))


@dataclass(frozen=True)
class Standby:
    """Where a standby streams from: the primary's private socket directory and its slot there."""

    primary_socket_dir: Path
    slot: str


@dataclass(frozen=True)
class Recovery:
    """A point-in-time restore: archived WAL in ``restore_dir`` (fetched by ``restore_command``), replayed up
    to ``target_time`` (an ISO timestamp; None: all of it), then the server is promoted."""

    restore_dir: Path
    target_time: str | None = None


class ServerBase:
    """A server's identity, directories and status; SQL as ``rdsadmin``; the IAM users' list."""

    def __init__(
        self,
        cluster_id: str,
        cluster_dir: Path,
        installation: Installation,
        runas: RunAs,
        templates: TemplateStore,
        admin_password: str,
        *,
        on_status_change: StatusCallback | None = None,
        restart_policy: RestartPolicy | None = None,
        server_id: str | None = None,
    ) -> None:
        self.cluster_id = cluster_id
        # which of the cluster's servers this is (the first one's id is the cluster's); status events name it
        self.server_id = server_id or cluster_id
        self.standby: Standby | None = None  # set by the owner before a start: run as a hot standby
        self.cluster_dir = cluster_dir
        self.installation = installation
        self.runas = runas
        self._templates = templates
        self._admin_password = admin_password
        self._on_status_change = on_status_change
        self._policy = restart_policy or RestartPolicy()
        self.pgdata = cluster_dir / "pgdata"
        self.log_path = cluster_dir / "log" / "postmaster.log"
        # PostgreSQL's own log files (logging_collector): the server's OS user writes them, auroral
        # lists, reads and expires them (logfiles.py); what the RDS API shows as error/postgresql.log.*
        self.log_dir = cluster_dir / logfiles.DIR_NAME
        self.socket_dir = postmaster.socket_dir_for(cluster_dir)
        self.port = conf.PORT
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._want_running = False
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._started_at = 0.0
        self._status: Status = "stopped" if (self.pgdata / "PG_VERSION").exists() else "not-initialized"
        self._reason = ""
        self._topology = aurora.Topology()
        # Continuous WAL archiving: PostgreSQL's archiver copies each finished segment here (the cluster's
        # own OS user's directory, as private as pgdata); auroral seals it into its WAL archive and removes
        # it (rds/wal_archive.py). ``recovery``: a point-in-time restore in progress (restore_backup).
        self.wal_spool = cluster_dir / WAL_SPOOL
        self.recovery: Recovery | None = None

    # ---- reading -------------------------------------------------------------------------------

    def status(self) -> Status:
        return self._status

    @property
    def reason(self) -> str:
        """Why the last transition happened (exit code and log tail for ``failed``)."""
        return self._reason

    @property
    def major(self) -> int:
        return self.installation.major

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    def _set_status(self, status: Status, reason: str = "") -> None:
        if status == self._status and reason == self._reason:
            return
        self._status, self._reason = status, reason
        log.info("server %s: %s %s", self.server_id, status, reason.splitlines()[0] if reason else "")
        if self._on_status_change is not None:
            try:
                self._on_status_change(self.server_id, status, reason)
            except Exception:
                log.exception("on_status_change callback failed for %s", self.server_id)

    # ---- SQL as rdsadmin -----------------------------------------------------------------------

    async def run_admin_sql(
        self, query: Query, params: Sequence[Any] | Mapping[str, Any] | None = None, dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        """Run one statement as ``rdsadmin`` (superuser) over the private socket; rows if any."""
        if self._status not in ("running", "starting"):
            raise ServerStateError(f"server {self.server_id} is {self._status}")
        async with await postmaster.connect(self.socket_dir, self._admin_password, dbname) as connection:
            cursor = await connection.execute(as_query(query), params)
            return await cursor.fetchall() if cursor.description is not None else []

    # ---- IAM database authentication: users the gateway logs in by peer -----------------------

    def iam_users(self) -> set[str]:
        """The users PostgreSQL trusts the gateway for (see ``conf``); empty if none."""
        try:
            return conf.parse_iam_users(conf.read(self.pgdata / conf.IAM_USERS_FILE))
        except FileNotFoundError:
            return set()
        except OSError as exc:  # not a regular file: the server's OS user replaced it (never followed)
            log.warning("cluster %s: ignoring %s (%s)", self.cluster_id, conf.IAM_USERS_FILE, exc)
            return set()

    def write_iam_users(self, names: Iterable[str]) -> None:
        """Rewrite the list only (a stopped server reads it at its next start)."""
        conf.write(self.pgdata / conf.IAM_USERS_FILE, conf.iam_users_conf(names), self.runas)

    async def set_iam_users(self, names: Iterable[str], *, wait_user: str | None = None,
                            listed: bool = True) -> None:
        """Rewrite the list and reload pg_hba.conf. The reload is asynchronous: with ``wait_user``, return
        once a new connection for that user gets in by peer (``listed``) or is asked for a password (not
        ``listed``). The probe asks for a database that does not exist: a peer login authenticates, then
        fails with 3D000, so no session ever runs as the user."""
        conf.write(self.pgdata / conf.IAM_USERS_FILE, conf.iam_users_conf(names), self.runas)
        await self.run_admin_sql("SELECT pg_reload_conf()")
        if wait_user is None:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                probe = await psycopg.AsyncConnection.connect(
                    host=str(self.socket_dir), port=conf.PORT, user=wait_user, dbname=_PROBE_DATABASE,
                    password="", passfile=str(self.socket_dir / "no-passfile"), connect_timeout=5, application_name="auroral-engine")
                await probe.close()  # someone created that database: authenticated all the same
                peer = True
            except psycopg.OperationalError as exc:
                # (libpq reports no SQLSTATE for connection failures: the message says 3D000)
                peer = f'database "{_PROBE_DATABASE}" does not exist' in str(exc)
            if peer == listed:
                return
            await asyncio.sleep(0.005)
        raise ServerStateError(f"pg_hba.conf reload for {wait_user!r} did not take effect")

    async def reset_master(self, username: str, password: str) -> None:
        """Restore the master user (attributes, password, ``rds_superuser`` WITH ADMIN OPTION).
        Runs in one transaction; existing sessions are not dropped."""
        connection = await postmaster.connect(self.socket_dir, self._admin_password)
        async with connection, connection.transaction():
            cursor = await connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,))
            exists = await cursor.fetchone() is not None
            for statement in bootstrap.reset_master(username, password, self.major, exists):
                await connection.execute(statement)

    async def control_data(self) -> dict[str, str]:
        """``pg_controldata`` of the data directory (meaningful for a stopped server)."""
        text = await postmaster.run_tool(self.installation, "pg_controldata", ["-D", str(self.pgdata)], self.runas)
        out = {}
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep:
                out[name.strip()] = value.strip()
        return out


def as_query(query: Query) -> bytes | sql.SQL | sql.Composed:
    # run_admin_sql accepts text built by the control plane itself, never user input
    return query.encode() if isinstance(query, str) else query


_PROBE_DATABASE = "auroral_hba_probe_no_such_database"
