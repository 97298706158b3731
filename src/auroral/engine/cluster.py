"""One PostgreSQL server (an Aurora cluster's writer, or a hot standby streaming from it: a reader) with a
clear status vocabulary.

    not-initialized ──create()──▶ starting ──▶ running ──stop()──▶ stopping ──▶ stopped
                                     ▲            │                                │
                                     │     postmaster exits unexpectedly           │
                                     │            ▼                                │
                                     └──────── failed ◀── restart attempts fail    │
                                     └──────────────────────start()────────────────┘

Transitions happen only on real events (the postmaster became ready, exited, a stop was requested)
and are reported through ``on_status_change(server_id, status, reason)``, a plain callable that must
not block. ``status()`` only reads.

Layout under ``<cluster_dir>``: ``pgdata/`` (the data directory), ``log/postmaster.log`` (server stderr
until the logging collector runs), ``pglog/`` (PostgreSQL's rotated log files, the server's user's,
``0700``: :mod:`logfiles`), ``run/`` (the private socket directory, unless its path is too long for a Unix socket; see
:func:`postmaster.socket_dir_for`). ``pgdata`` and ``run`` belong to the cluster's OS user, mode 0700; as
root the cluster directory itself and ``log/`` are root's (``0711``, ``0700``), so the names root uses
cannot be swapped by that user, and every file root writes or reads inside ``pgdata`` goes through
:mod:`fsafe`. The gateway runs as root (or as that same user) and reaches
``<socket_dir>/.s.PGSQL.5432``.

Standbys (``PgServer.standby`` set): a server made by :meth:`PgServer.create_replica` with
``pg_basebackup`` from the cluster's primary, or a former primary told to follow a new one. It runs with
``standby.signal`` and streams from the primary's private socket as ``rdsrepladmin`` by peer (the
cluster's servers share one OS user), through a physical replication slot on the primary named after
it; :meth:`PgServer.promote` makes it the primary. A server is one of the cluster's servers, named by
``server_id`` (the first one, the "cluster volume", has the cluster's id); status events name it.

Supervision: while the server should run, a task awaits the postmaster. If it exits without a stop
having been requested, the status becomes ``failed`` with the exit code and the log tail, and the
server is restarted with exponential backoff, a bounded number of times. ``stop()`` never triggers a
restart. ``create()`` leaves the server running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pwd
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from auroral.engine import aurora, bootstrap, conf, extensions, fsafe, logfiles, postmaster, proc
from auroral.engine.binaries import Installation
from auroral.engine.errors import ParameterError, ServerStartError, ServerStateError
from auroral.engine.osuser import RunAs, check_traversable, current, make_private_dir
from auroral.engine.template import WAL_SEGMENT_MB, TemplateStore

Status = Literal["not-initialized", "stopped", "starting", "running", "stopping", "failed"]
StatusCallback = Callable[[str, Status, str], None]
Query = str | bytes | sql.SQL | sql.Composed

log = logging.getLogger(__name__)
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
# set only by the engine: a parameter group may not move the socket or open a TCP listener
_RESERVED_PARAMS = frozenset(
    {"listen_addresses", "port", "unix_socket_directories", "unix_socket_permissions", "unix_socket_group",
     "cluster_name", "hba_file", "ident_file", "data_directory", "config_file", "external_pid_file",
     "ssl", "archive_command", "restore_command", "log_directory",
     # the log files are auroral's to name, keep and read (logfiles.py)
     "logging_collector", "log_filename", "log_file_mode", "log_truncate_on_rotation",
     "syslog_facility", "syslog_ident", "event_source"}
)
PARAMS_JSON = "auroral.params.json"
RECOVERY_SIGNAL = "recovery.signal"
# "0": no continuous WAL archiving (no point-in-time restore); for measuring what archiving costs
ENV_WAL_ARCHIVING = "AURORAL_WAL_ARCHIVING"
WAL_SPOOL = "walspool"
WAL_RESTORE = "walrestore"
ARCHIVE_TIMEOUT = "60"  # seconds: an idle-ish cluster's WAL is archived at least this often
CLONING_MARKER = ".cloning"  # in a server's directory while pg_basebackup fills its data directory
# A major version upgrade (PgServer.upgrade_major): the marker holds the target major while pg_upgrade
# fills UPGRADE_DIR; the old data directory becomes OLD_DIR only once the new one is complete.
UPGRADE_MARKER = ".upgrading"
UPGRADE_DIR = "pgdata.upgrade"
OLD_DIR = "pgdata.old"
_UPGRADE_WORK = "upgrade-work"
# defined by the auroral_rds module (extension.py); turning it on without the module would do nothing
RESTRICT_PASSWORD_COMMANDS = "rds.restrict_password_commands"
_BOOL_ON = frozenset({"1", "on", "true", "yes", "t", "y"})
_BOOL_OFF = frozenset({"0", "off", "false", "no", "f", "n"})


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


@dataclass(frozen=True)
class ParameterChange:
    """Outcome of :meth:`PgServer.set_parameters`: names applied now, names waiting for a reboot."""

    applied: list[str] = field(default_factory=list)
    pending_reboot: list[str] = field(default_factory=list)


class PgServer:
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

    # ---- lifecycle -----------------------------------------------------------------------------

    async def create(
        self,
        master_username: str,
        master_password: str,
        database_name: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> None:
        """Clone the template, add the master user (and database), apply ``params``; leaves it running."""
        async with self._lock:
            if self._status != "not-initialized":
                raise ServerStateError(f"cluster {self.cluster_id} is already initialized ({self._status})")
            self._set_status("starting", "creating")
            try:
                await self._provision(master_username, master_password, database_name)
            except BaseException as exc:
                await self._halt()
                self._set_status("failed", f"create failed: {exc}")
                raise
        if params:
            change = await self.set_parameters(params)
            if change.pending_reboot:
                await self.restart()

    async def _provision(self, master: str, password: str, database: str | None) -> None:
        self._make_cluster_dir()
        shutil.rmtree(self.pgdata, ignore_errors=True)  # a create interrupted earlier
        await self._templates.clone(self.installation, self.pgdata, self.runas)
        # the copy becomes durable while the server starts and bootstraps (each takes about as long);
        # the cluster is not reported running before both are done
        durable = asyncio.create_task(self._templates.make_durable(self.pgdata), name=f"fsync-{self.cluster_id}")
        try:
            await self._launch("bootstrap")
            statements: list[Query] = [bootstrap.set_admin_password(self._admin_password)]
            statements += bootstrap.create_master(master, password, self.major)
            if database:
                statements.append(bootstrap.create_database(database, master))
            async with await postmaster.connect(self.socket_dir, None) as connection:
                for statement in statements:
                    await connection.execute(_query(statement))
            conf.write(self.pgdata / "pg_hba.conf", conf.hba_conf("final"), self.runas)
            await self.run_admin_sql("SELECT pg_reload_conf()")
            # the reload is asynchronous: wait until password authentication is what we get
            await self._wait_for_hba()
        finally:
            # awaited on failure too, so that the caller's cleanup does not race our fsyncs (which
            # would survive anyway: fsync_tree skips files that vanish)
            await durable
        self._want_running = True
        self._supervisor = asyncio.create_task(self._supervise(), name=f"supervise-{self.server_id}")
        self._set_status("running")

    def _make_cluster_dir(self) -> None:
        """Ours (root's, ``0711``) when the server runs as another user: it can then change nothing
        but ``pgdata`` and ``run`` (an older engine gave the whole directory to the server's user)."""
        if self.runas.is_current:
            make_private_dir(self.cluster_dir, self.runas)
        else:
            make_private_dir(self.cluster_dir, current(), 0o711)

    async def _wait_for_hba(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                async with await postmaster.connect(self.socket_dir, None):
                    pass
            except psycopg.OperationalError:
                return  # trust no longer applies: scram-sha-256 asked for a password
            await asyncio.sleep(0.02)
        raise ServerStartError("pg_hba.conf reload did not take effect", postmaster.log_tail(self.log_path))

    async def start(self) -> None:
        """Start a stopped (or failed) server; returns once it accepts connections."""
        async with self._lock:
            if self._status == "not-initialized":
                raise ServerStateError(f"cluster {self.cluster_id} has no data directory")
            if self._status == "running" and self.pid is not None:
                return
            self._want_running = False
            await self._halt()
            self._set_status("starting")
            try:
                await self._launch("final")
            except BaseException as exc:
                self._set_status("failed", str(exc))
                raise
            self._want_running = True
            self._supervisor = asyncio.create_task(self._supervise(), name=f"supervise-{self.server_id}")
            self._set_status("running")

    async def stop(self) -> None:
        """Fast shutdown; waits for the postmaster to exit. No restart follows."""
        async with self._lock:
            self._want_running = False
            self._wake.set()
            if self._process is not None and self._process.returncode is None:
                self._set_status("stopping")
            await self._halt()
            if self._status != "not-initialized":
                self._set_status("stopped")

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def delete(self) -> None:
        """Stop and remove every file of the server; no process survives."""
        await self.stop()
        async with self._lock:
            await postmaster.clear_leftovers(self.pgdata)
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
            if self.socket_dir.parent != self.cluster_dir:
                shutil.rmtree(self.socket_dir, ignore_errors=True)
            self._set_status("not-initialized", "deleted")

    async def _halt(self) -> None:
        """Stop our postmaster (if any) and the supervisor; caller holds the lock."""
        process = self._process
        if process is not None and process.returncode is None:
            await postmaster.shutdown(process)
        task = self._supervisor
        if task is not None and task is not asyncio.current_task():
            # the supervisor only runs outside our lock (waiting on the process, in backoff or for the
            # lock itself), so cancelling it cannot interrupt a launch
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._supervisor = None
        self._wake.clear()

    async def _launch(self, hba_mode: str) -> None:
        """Write our config, start the postmaster and wait until it accepts connections."""
        await postmaster.clear_leftovers(self.pgdata)
        # checked every time: a chmod of an ancestor would otherwise surface as an obscure "could not
        # access directory"
        self._make_cluster_dir()
        check_traversable(self.cluster_dir, self.runas)
        make_private_dir(self.socket_dir, self.runas)
        make_private_dir(self.wal_spool, self.runas)
        self._write_local_conf()
        conf.write(self.pgdata / "pg_ident.conf", conf.ident_conf(_gateway_os_user(), self.runas.name), self.runas)
        # the owner says this server is the primary, yet it is a standby (told to lead while it was stopped):
        # it starts as one and is promoted, so that it leads on a timeline of its own
        promote = self.standby is None and (self.pgdata / conf.STANDBY_SIGNAL).exists()
        if self.standby is not None:
            conf.write(self.pgdata / conf.STANDBY_SIGNAL, "", self.runas)
        if self.recovery is not None:
            conf.write(self.pgdata / RECOVERY_SIGNAL, "", self.runas)
        # kept across restarts (the IAM module's list), rewritten with only the well-formed names (a
        # file of an older auroral may hold lines a role name with a line break put there), and so that
        # a symlink there is replaced
        conf.write(self.pgdata / conf.IAM_USERS_FILE, conf.iam_users_conf(self.iam_users()), self.runas)
        conf.write(self.pgdata / "pg_hba.conf", conf.hba_conf(hba_mode), self.runas)
        make_private_dir(self.log_path.parent, current())
        make_private_dir(self.log_dir, self.runas)
        process = await postmaster.launch(self.installation, self.pgdata, self.runas, self.log_path)
        self._process = process
        password = None if hba_mode == "bootstrap" else self._admin_password

        async def check() -> None:
            async with await postmaster.connect(self.socket_dir, password):
                pass

        try:
            await postmaster.wait_ready(process, self.pgdata, self.socket_dir, self.log_path, check)
        except BaseException:
            await postmaster.shutdown(process)
            raise
        self._started_at = time.monotonic()
        if promote:
            async with await postmaster.connect(self.socket_dir, password) as connection:
                await connection.execute("SELECT pg_catalog.pg_promote(true, 60)")
        # every start: databases of a data directory older than the functions get them too (a standby
        # has its primary's, and could not write them)
        if self.standby is None and self.recovery is None:
            await aurora.install(lambda dbname: postmaster.connect(self.socket_dir, password, dbname))
            # from the first start on, so that nobody else can create a role of that name
            async with await postmaster.connect(self.socket_dir, password) as connection:
                for statement in bootstrap.ENSURE_REPLICATION_ROLE:
                    await connection.execute(statement.encode())

    async def _supervise(self) -> None:
        attempts = 0
        while self._want_running:
            process = self._process
            if process is None:
                return
            code = await process.wait()
            if not self._want_running:
                return
            if time.monotonic() - self._started_at > self._policy.stable_after:
                attempts = 0
            reason = (f"postmaster exited unexpectedly with code {code}\n{postmaster.log_tail(self.log_path)}\n"
                      f"{self._collector_failure()}").rstrip()
            self._set_status("failed", reason)
            while True:
                if attempts >= self._policy.max_attempts:
                    self._set_status("failed", f"gave up after {attempts} restart attempts\n{reason}")
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._policy.delay(attempts))
                attempts += 1
                if not self._want_running:
                    return
                async with self._lock:
                    if not self._want_running:
                        return
                    self._set_status("starting", f"restart attempt {attempts}")
                    try:
                        await self._launch("final")
                    except (ServerStartError, OSError, psycopg.Error) as exc:
                        reason = str(exc)
                        self._set_status("failed", reason)
                        continue
                    self._set_status("running", f"restarted after attempt {attempts}")
                    break

    # ---- SQL as rdsadmin -----------------------------------------------------------------------

    async def run_admin_sql(
        self, query: Query, params: Sequence[Any] | Mapping[str, Any] | None = None, dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        """Run one statement as ``rdsadmin`` (superuser) over the private socket; rows if any."""
        if self._status not in ("running", "starting"):
            raise ServerStateError(f"server {self.server_id} is {self._status}")
        async with await postmaster.connect(self.socket_dir, self._admin_password, dbname) as connection:
            cursor = await connection.execute(_query(query), params)
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

    # ---- parameters ----------------------------------------------------------------------------

    def parameters(self) -> dict[str, str]:
        """The parameter-group values currently written for this server."""
        try:
            data = json.loads(conf.read(self.pgdata / PARAMS_JSON))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # the server's OS user can replace the file; the control plane rewrites every value
            log.warning("cluster %s: ignoring %s (%s)", self.cluster_id, PARAMS_JSON, exc)
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): str(v) for k, v in data.items()}

    async def set_parameters(self, changes: Mapping[str, str | None]) -> ParameterChange:
        """Merge ``changes`` (``None`` resets a parameter to the engine default) into the server's
        parameter file. PostgreSQL itself validates names and values first (``postgres -C``; on error
        nothing changes and :class:`ParameterError` carries its messages). A running server reloads;
        parameters whose ``pg_settings.context`` is ``postmaster`` are reported as pending a reboot."""
        for name, value in changes.items():
            if not _PARAM_NAME.match(name) or name.lower() in _RESERVED_PARAMS:
                raise ParameterError(f"parameter {name!r} cannot be modified")
            if name.lower() == RESTRICT_PASSWORD_COMMANDS and value is not None:
                self._check_restrict_password(value)
            if name.lower() == extensions.PRELOAD_SETTING:
                try:
                    extensions.preload_libraries(value, self.installation.libdir)
                except ValueError as exc:
                    raise ParameterError(str(exc)) from None
            if name.lower() == extensions.ALLOWED_SETTING and value is not None \
                    and not extensions.allowed_extensions_ok(value):
                raise ParameterError(f'invalid value for parameter "{extensions.ALLOWED_SETTING}": "{value}"')
        async with self._lock:
            old = self.parameters()
            new = dict(old)
            for name, value in changes.items():
                if value is None:
                    new.pop(name, None)
                else:
                    new[name] = value
            self._write_parameters(new)
            try:
                self._write_local_conf()  # ours, read by the check: replaced if the server's user swapped it
                check_traversable(self.cluster_dir, self.runas)
                error = await postmaster.check_config(self.installation, self.pgdata, self.runas)
            except BaseException:
                self._write_parameters(old)
                raise
            if error is not None:
                self._write_parameters(old)
                raise ParameterError(error)
            if self._status != "running":
                return ParameterChange(pending_reboot=sorted(changes))
            await self.run_admin_sql("SELECT pg_reload_conf()")
            rows = await self.run_admin_sql(
                "SELECT name, context, setting, vartype FROM pg_settings WHERE name = ANY(%s)",
                ([n.lower() for n in changes],),
            )
        # a static parameter waits for a restart unless the server already runs with that value
        running = {name: (setting, vartype) for name, context, setting, vartype in rows if context == "postmaster"}
        pending = sorted(n for n in changes if n.lower() in running
                         and not _same_setting(changes[n], *running[n.lower()]))
        return ParameterChange(applied=sorted(n for n in changes if n not in pending), pending_reboot=pending)

    def _check_restrict_password(self, value: str) -> None:
        if value.strip().lower() not in _BOOL_ON | _BOOL_OFF:
            raise ParameterError(f'parameter "{RESTRICT_PASSWORD_COMMANDS}" requires a Boolean value')
        if value.strip().lower() in _BOOL_ON and not self.installation.preload:
            raise ParameterError(
                f"{RESTRICT_PASSWORD_COMMANDS} cannot be turned on: the auroral_rds server module could not "
                f"be built for PostgreSQL {self.major} (it needs gcc and the server headers)")

    def _write_local_conf(self) -> None:
        shipped = aurora.extension_names(self.installation.sharedir)
        extra = aurora.settings(self._topology, extensions.supported(self.major, shipped))
        extra.update(self._replication_settings())
        extra.update(self._logging_settings())
        extra.update(self._archive_settings())
        # the parameter group's libraries (checked when set; one that went missing is left out) after
        # the engine's own module, which SHOW does not show (auroral_rds: auroral.preload_libraries)
        try:
            libraries = extensions.preload_libraries(self.parameters().get(extensions.PRELOAD_SETTING),
                                                     self.installation.libdir)
        except ValueError as exc:
            log.warning("cluster %s: %s", self.cluster_id, exc)
            libraries = extensions.preload_libraries(None, self.installation.libdir)
        if self.installation.preload:
            extra[extensions.USER_PRELOAD_SETTING] = ",".join(libraries)
        preload = [*self.installation.preload, *(Path(name) for name in libraries)]
        local = conf.local_conf(self.socket_dir, self.server_id, preload, extra)
        conf.write(self.pgdata / conf.LOCAL_FILE, local, self.runas)

    def _logging_settings(self) -> dict[str, str]:
        """PostgreSQL's log files as Aurora keeps them (``logfiles.py``): the collector on (static: from the
        next start), in the server's own log directory, named as Aurora names them, readable by their
        owner only. Rotation (``log_rotation_age``/``size``), the format (``log_destination``: stderr, csvlog)
        and what is logged come from the parameters."""
        return {
            "logging_collector": "on",
            "log_directory": str(self.log_dir),
            "log_filename": logfiles.FILENAME_PATTERN,
            "log_file_mode": "0600",
            "log_truncate_on_rotation": "off",
        }

    def _collector_failure(self) -> str:
        try:
            return logfiles.failure_lines(self.log_dir)
        except OSError as exc:
            return f"(log files not read: {exc})"

    # ---- replication: standbys, promotion ---------------------------------------------------------

    def _archive_settings(self) -> dict[str, str]:
        """Every server archives its finished WAL segments (a primary does; a standby from its promotion on)
        into its spool directory; auroral's paths only, no user text."""
        if os.environ.get(ENV_WAL_ARCHIVING) == "0":  # benchmarks: the cost of archiving, measured
            return {"archive_mode": "off"}
        spool = str(self.wal_spool)
        settings = {
            "archive_mode": "on",
            "archive_command": f'cp "%p" "{spool}/%f.part" && mv "{spool}/%f.part" "{spool}/%f"',
            "archive_timeout": ARCHIVE_TIMEOUT,
        }
        if self.recovery is not None:
            settings["restore_command"] = f'cp "{self.recovery.restore_dir}/%f" "%p"'
            if self.recovery.target_time is not None:
                settings["recovery_target_time"] = self.recovery.target_time
                settings["recovery_target_action"] = "promote"
        return settings

    def _replication_settings(self) -> dict[str, str]:
        """Every server may become a primary or a standby: the same settings on both, only the
        standby's source differs (``primary_conninfo`` and ``primary_slot_name`` take a reload)."""
        settings = {
            "wal_level": "replica",
            "hot_standby": "on",
            # queries on a reader are not cancelled because the writer vacuumed rows they still see
            "hot_standby_feedback": "on",
            # pg_rewind of a former primary needs hint-bit changes in the WAL (static: from the next start)
            "wal_log_hints": "on",
            "recovery_target_timeline": "latest",
        }
        if self.standby is None:
            settings.update(primary_conninfo="", primary_slot_name="")
        else:
            settings.update(
                primary_conninfo=(f"host={self.standby.primary_socket_dir} port={conf.PORT} "
                                  f"user={conf.REPLICATION_ROLE} application_name={self.server_id}"),
                primary_slot_name=self.standby.slot,
            )
        return settings

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

    async def control_data(self) -> dict[str, str]:
        """``pg_controldata`` of the data directory (meaningful for a stopped server)."""
        text = await postmaster.run_tool(self.installation, "pg_controldata", ["-D", str(self.pgdata)], self.runas)
        out = {}
        for line in text.splitlines():
            name, sep, value = line.partition(":")
            if sep:
                out[name.strip()] = value.strip()
        return out

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

    async def discard(self) -> None:
        """Stop and remove this server's own files (data directory, log, socket directory) but keep its
        directory: the cluster's first server, whose directory holds the cluster's other servers too."""
        await self.stop()
        async with self._lock:
            await postmaster.clear_leftovers(self.pgdata)
            for path in (self.pgdata, self.log_path.parent, self.log_dir, self.socket_dir):
                shutil.rmtree(path, ignore_errors=True)
            self._set_status("not-initialized", "discarded")

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

    # ---- Aurora's view of the instance (aurora_db_instance_identifier(), aurora_replica_status()) ----

    @property
    def topology(self) -> aurora.Topology:
        return self._topology

    async def set_topology(self, topology: aurora.Topology) -> None:
        """What the server says it is (``aurora.py``); a running server takes it with a reload, and
        this returns once new sessions see it."""
        async with self._lock:
            if topology == self._topology:
                return
            self._topology = topology
            if self._status == "not-initialized":
                return
            self._write_local_conf()
            if self._status != "running" or self.pid is None:
                return  # the next start reads it
            expected = aurora.settings(topology, ())[aurora.REPLICAS_SETTING]
            identifier = topology.instance_identifier
            await self.run_admin_sql("SELECT pg_catalog.pg_reload_conf()")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                rows = await self.run_admin_sql(
                    "SELECT pg_catalog.current_setting(%s, true), pg_catalog.current_setting(%s, true)",
                    (aurora.REPLICAS_SETTING, aurora.IDENTIFIER_SETTING))
                if rows and rows[0] == (expected, identifier):
                    return
                await asyncio.sleep(0.02)
            log.warning("cluster %s: the server did not take its new topology within 10 s", self.cluster_id)

    def _write_parameters(self, values: Mapping[str, str]) -> None:
        conf.write(self.pgdata / PARAMS_JSON, json.dumps(dict(values), sort_keys=True), self.runas)
        # shared_preload_libraries goes to auroral.local.conf with the engine's own module (_write_local_conf)
        settings = {name: value for name, value in values.items() if name.lower() != extensions.PRELOAD_SETTING}
        conf.write(self.pgdata / conf.PARAMS_FILE, conf.render(settings, "parameter group values"), self.runas)


def _same_setting(value: str | None, setting: Any, vartype: Any) -> bool:
    """Whether ``value`` (from a parameter group) is what ``pg_settings.setting`` shows; when unsure, no."""
    if value is None or setting is None:
        return False
    if vartype == "bool":
        lowered = value.strip().lower()
        return (lowered in _BOOL_ON and setting == "on") or (lowered in _BOOL_OFF and setting == "off")
    return value.strip() == str(setting)


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


def _query(query: Query) -> bytes | sql.SQL | sql.Composed:
    # run_admin_sql accepts text built by the control plane itself, never user input
    return query.encode() if isinstance(query, str) else query


_PROBE_DATABASE = "auroral_hba_probe_no_such_database"


def _gateway_os_user() -> str:
    """The OS user of this process: the gateway connects to the private socket as it."""
    return pwd.getpwuid(os.geteuid()).pw_name


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
