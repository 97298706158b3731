"""The real ``ClusterRuntime``: PostgreSQL servers from ``auroral.engine`` behind endpoint
listeners from ``auroral.gateway``, on this machine.

* PostgreSQL servers per cluster: the first (keyed by ``DbClusterResourceId``, the "cluster volume")
  is created with the cluster and served by its first writer; every further instance gets a server of
  its own, a physical streaming replica (hot standby) of the cluster's primary, cloned with
  ``pg_basebackup`` (``engine/cluster.py``). Which server each instance runs on and which server is the
  primary is the cluster's *layout*, kept in the store (kind ``rds-servers``) and written before acting.
  The ``rdsadmin`` password (the same in every server: it is data) is random, sealed in the store
  *before* the first server is created, and used again by ``recover`` after a restart.
* One gateway listener per instance (keyed by ``DbiResourceId``) relaying to that instance's own
  server, on the instance's own address (the loopback address of its RDS-managed network interface,
  ``rds/addresses.py``) and the cluster's port, so clients reconnect where they were after a restart.
  With an explicit ``endpoint_host`` (``AURORAL_ENDPOINT_HOST``) every listener is on that address with
  a port of its own instead.
* Failover, the layout, the topology and the readers' lag: ``local_replicas.py`` (:class:`ReplicaSet`).
* Cluster parameters: the PostgreSQL settings among them go to the server; ``rds.force_ssl`` is
  read by the listener on every new connection. ``rds.restrict_password_commands`` is a setting of
  auroral's server module ``auroral_rds`` (compiled at run time, see ``engine/extension.py``); where
  it could not be built, setting it to 1 is refused (``parameter_refusal``). Every start writes all of
  them (a parameter the group no longer sets goes back to the engine's default) and PostgreSQL judges
  the values: a refusal, or a server that exits at start because of them, is ``IncompatibleParameters``
  (the server stays stopped, its data intact). ``timezone`` may be any zone of the tz database the
  serving PostgreSQL reads (``allowed_values``, ``engine/timezones.py``).
* Each server knows what Aurora's functions report (``engine/aurora.py``): the cluster's EngineVersion,
  the instance it is, and every member (``aurora_replica_status()``: the writer's row, then each reader
  with a session id and its replay lag). It is told before every start and whenever an endpoint opens or
  closes.
* A cluster runs exactly the PostgreSQL major of its EngineVersion: an installed one (``engine/binaries.py``)
  or one fetched on first use (``engine/fetch.py``; ``AURORAL_ENGINE_FETCH=0`` serves installed majors
  only). ``available_majors`` is those majors, so DescribeDBEngineVersions offers nothing else.
* PostgreSQL 14 and 15 serve clusters only where the ``auroral_rds`` module can be built for them (a C
  compiler, and server headers: every fetched build has them): before 16 a ``CREATEROLE`` role can grant
  itself ``pg_execute_server_program`` and run programs as the server's OS user, which the module refuses
  (as RDS does). Without a compiler only 16 and newer are offered, and an installation of 14/15 without
  headers is refused when a cluster would start on it (``LocalEngine._runnable_copy``).
  ``AURORAL_ALLOW_PG_BELOW_16=1`` serves them without the module (tests of the unguarded engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from auroral import cbuild
from auroral.crypto import Sealer
from auroral.engine import (
    EngineError,
    Installation,
    LocalEngine,
    ParameterError,
    PgServer,
    RestartPolicy,
    ServerStartError,
    Standby,
    fsafe,
    logfiles,
)
from auroral.engine.bootstrap import RESERVED_ROLES, scram_verifier
from auroral.engine.cluster import RESTRICT_PASSWORD_COMMANDS
from auroral.engine.conf import DEFAULT_MAX_CONNECTIONS
from auroral.engine.extension import ENV_ALLOW_BELOW_16
from auroral.engine.extensions import ALLOWED_SETTING, offered
from auroral.engine.postmaster import config_rejection, connect
from auroral.engine.timezones import timezone_names
from auroral.gateway import EndpointConfig, Gateway
from auroral.gateway.decision import Authenticate, Decide, SourceSpace, UnearnedTrust, allow_all
from auroral.rds.addresses import Placement, PlacementError, bind_endpoint
from auroral.rds.endpoints import certificate_names
from auroral.rds.local_replicas import KIND_SERVERS, Layout, ReplicaSet, slot_name
from auroral.rds.model import Cluster, Instance
from auroral.rds.runtime import IncompatibleParameters, RuntimeFailure, StatusListener
from auroral.store import Store

log = logging.getLogger(__name__)

KIND_ADMIN = "rds-admin-password"
LOG_EXPIRY_SECONDS = 60.0
# cluster rid, WAL file name, its content, when it was archived -> stored? (a coroutine: its CPU and disk
# work goes to a worker thread, not the event loop)
WalListener = Callable[[str, str, bytes, float], Awaitable[bool]]
WAL_SHIP_SECONDS = 1.0
# what an archiver leaves in its spool: segments (24 hex digits), timeline histories, backup labels
WAL_FILE = re.compile(r"[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history")
WAL_FILE_LIMIT = 64 << 20
# Aurora PostgreSQL majors AWS offers (18: unconfirmed whether Aurora offers it yet; served where the
# engine has it, listed by engine_versions only if it knows 18's minors).
AURORA_MAJORS = (13, 14, 15, 16, 17, 18)

# Cluster parameters that are PostgreSQL settings (AWS's name == PostgreSQL's). Others (rds.*,
# ssl*) belong to the gateway or are shown only.
PG_SETTINGS = frozenset({
    "client_encoding", "idle_in_transaction_session_timeout", "log_connections", "log_disconnections",
    "log_destination", "log_line_prefix", "log_min_duration_statement", "log_min_messages", "log_rotation_age",
    "log_rotation_size", "log_statement", "max_connections", "password_encryption",
    "statement_timeout", "timezone",
    # defined by auroral's server module auroral_rds (engine/extension.py); 0/1 are valid booleans
    "rds.restrict_password_commands",
    # the extensions users may create (auroral_rds; engine/extensions.py) and the libraries preloaded
    # (with auroral_rds, which SHOW does not show)
    "rds.allowed_extensions", "shared_preload_libraries",
})

_WORD = re.compile(r"[^a-z0-9_.]+")

# Engine status -> RDS status for events the engine observes by itself.
_STATUS = {"running": "available", "failed": "failed", "starting": "available", "stopped": "stopped"}


def pg_settings(values: Mapping[str, str]) -> dict[str, str | None]:
    return {k: (v if v != "" else None) for k, v in values.items() if k in PG_SETTINGS}


def max_connections_of(values: Mapping[str, str]) -> int:
    """An instance's ``max_connections``, which its endpoint enforces as the server does: the number
    the cluster's parameters give the server, else the server's default. AWS's default group has the
    formula ``LEAST({DBInstanceClassMemory/9531392},5000)``, which auroral does not evaluate (the
    server runs with the engine's default, and ``SHOW max_connections`` says so)."""
    value = values.get("max_connections", "")
    return int(value) if value.isascii() and value.isdigit() else DEFAULT_MAX_CONNECTIONS
def all_pg_settings(values: Mapping[str, str]) -> dict[str, str | None]:
    """Every PostgreSQL setting among the cluster parameters; None for those ``values`` leaves out."""
    return {name: (values.get(name) or None) for name in sorted(PG_SETTINGS)}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]








def _spooled(spool: Path) -> list[str]:
    """The WAL files an archiver left in ``spool``, oldest first (blocking)."""
    return sorted(n for n in os.listdir(spool) if WAL_FILE.fullmatch(n))


def _read_spooled(spool: Path, name: str) -> tuple[float, bytes]:
    """(when it was archived, content) of a spooled WAL file, never following a symlink (blocking)."""
    with fsafe.directory(spool) as dfd:
        archived_at = os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mtime
    return archived_at, fsafe.read_bytes(spool / name, limit=WAL_FILE_LIMIT)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def served_min_major() -> int:
    """The oldest major offered: any, with a C compiler to build ``auroral_rds`` (or with
    ``AURORAL_ALLOW_PG_BELOW_16=1``); else 16 (see the module docstring)."""
    if os.environ.get(ENV_ALLOW_BELOW_16) == "1" or cbuild.missing_compiler() is None:
        return 0
    return 16


def restart_policy_from_env() -> RestartPolicy | None:
    """``AURORAL_RESTART_ATTEMPTS``: how often the supervisor restarts a crashed PostgreSQL (0: never,
    which makes a dying writer fail over to a reader at once, after ``local_replicas.AUTO_FAILOVER_AFTER``)."""
    value = os.environ.get("AURORAL_RESTART_ATTEMPTS", "")
    if not value:
        return None
    if not value.isdigit() or int(value) > 100:
        raise ValueError("AURORAL_RESTART_ATTEMPTS must be a number from 0 to 100")
    return RestartPolicy(max_attempts=int(value))


class LocalRuntime(ReplicaSet):
    def __init__(
        self,
        data_dir: Path,
        store: Store,
        sealer: Sealer,
        gateway: Gateway,
        *,
        endpoint_host: str | None = None,
        installations: list[Installation] | None = None,
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._gateway = gateway
        # An explicit endpoint address (AURORAL_ENDPOINT_HOST): every endpoint there, on a port of its
        # own. Without one, each instance listens on its own address (``placement_for``).
        self._host = endpoint_host
        self.snapshot_dir = data_dir / "snapshots"  # sealed snapshot files (rds/snapshots.py)
        self._bound: dict[str, tuple[str, int]] = {}  # instance resource id -> (address, port) listening
        # the gate applies to every source alike: discovered, preinstalled (AURORAL_ENGINE_DIR) and fetched
        min_major = 0 if installations is not None else served_min_major()
        self._engine = LocalEngine(data_dir, installations=installations, min_major=min_major,
                                   on_status_change=self._engine_status, restart_policy=restart_policy_from_env())
        self._listeners: list[StatusListener] = []
        self._wal_listeners: list[WalListener] = []
        self._ship_task: asyncio.Task[None] | None = None
        self._ship_locks: dict[str, asyncio.Lock] = {}  # cluster rid -> one shipper at a time (loop, flush)
        self._parameters: dict[str, dict[str, str]] = {}
        self._writer: dict[str, str] = {}  # cluster resource id -> writer instance resource id
        self._names: dict[str, str] = {}  # DbiResourceId -> DBInstanceIdentifier, while its endpoint is open
        self._layouts: dict[str, tuple[str, Layout]] = {}  # cluster resource id -> (account, layout)
        self._clusters: dict[str, Cluster] = {}  # cluster resource id -> the cluster, as last seen
        self._lag: dict[str, dict[str, int]] = {}  # cluster resource id -> server id -> replay lag (ms)
        self._lag_task: asyncio.Task[None] | None = None
        self._expiry_task: asyncio.Task[None] | None = None  # removes log files past their retention
        self._watch: dict[str, asyncio.Task[None]] = {}  # cluster resource id -> writer-lost timer
        self._busy: set[str] = set()  # clusters in a failover: their primary's events are ours
        self._allowed: dict[tuple[str, int], str | None] = {}
        # Network hooks, per endpoint: supplied by the network layer (security groups, IAM auth).
        self.decide_for: Callable[[Cluster, Instance], Decide] = lambda c, i: allow_all
        self.authenticate_for: Callable[[Cluster, Instance], Authenticate | None] = lambda c, i: None
        self.unearned_trust_for: Callable[[Cluster, Instance], UnearnedTrust | None] = lambda c, i: None
        # Where an instance listens (rds/addresses.py); None: on 127.0.0.1 with a port of its own.
        self.placement_for: Callable[[Cluster, Instance], Placement] | None = None

        # Where decide_for's verdict changes (for the listener's kernel filter); None: no filter.
        self.source_space_for: Callable[[Cluster, Instance], Callable[[], SourceSpace | None] | None] = \
            lambda c, i: None

    # --- bookkeeping -------------------------------------------------------------------------

    def available_majors(self) -> list[int]:
        """Aurora majors this runtime serves, each on exactly that PostgreSQL major: the installed ones
        and, with fetching on, the ones it can fetch (``LocalEngine.majors``; 13 has no build to fetch)."""
        return [m for m in self._engine.majors() if m in AURORA_MAJORS]

    def allowed_values(self, name: str, major: int) -> str | None:
        if name == ALLOWED_SETTING:
            return ",".join(["*", *offered(major)])
        if name != "timezone":
            return None
        key = (name, major)
        if key not in self._allowed:
            pool = self._engine.pool()
            # the major's own zone list; one not fetched yet reads another major's (the zone names
            # come from the tz database, not from the major; unconfirmed: builds of other dates may differ)
            inst = next((i for i in pool if i.major == major), pool[0] if pool else None)
            if inst is None:
                return None
            try:
                names = timezone_names(inst)
            except (EngineError, ValueError):
                names = frozenset()
            self._allowed[key] = ",".join(sorted(names)) or None
        return self._allowed[key]

    def parameter_refusal(self, name: str, value: str, major: int) -> str | None:
        if name != RESTRICT_PASSWORD_COMMANDS or value != "1":
            return None
        try:
            inst = self._engine.installation(str(major))
        except (EngineError, OSError):
            return None  # no server for this major can be created anyway (reported there)
        if inst.preload:
            return None
        return (f"{name} cannot be set to 1 on this auroral host: the auroral_rds PostgreSQL module that "
                f"enforces it could not be built for PostgreSQL {inst.major} (it needs gcc and the "
                "PostgreSQL server headers; see the auroral log)")

    def set_status_listener(self, fn: StatusListener) -> None:
        # One RDS provider per region listens; each ignores the clusters of the others.
        self._listeners.append(fn)

    def _engine_status(self, server_id: str, status: str, reason: str) -> None:
        """A server's event. The primary's are the cluster's; a standby's are logged only (its instance
        stays as it is: unconfirmed what Aurora shows for a reader whose process restarts)."""
        try:
            cluster_id = self._engine.get_server(server_id).cluster_id
        except EngineError:
            cluster_id = server_id
        known = self._layouts.get(cluster_id)
        if (known is not None and known[1].primary != server_id) or cluster_id in self._busy:
            return
        if status == "failed":
            self._watch_writer(cluster_id, server_id)
        if status == "starting" and reason.startswith("restart attempt"):
            return  # the supervisor tries: the cluster stays failed until the server runs again
        mapped = _STATUS.get(status)
        if mapped is not None:
            for listener in self._listeners:
                listener(cluster_id, mapped, reason or None)


    def _admin_password(self, cluster: Cluster, *, create: bool = False) -> str:
        doc = self._store.get(KIND_ADMIN, cluster.account, cluster.resource_id)
        if doc is not None:
            return self._sealer.open_text(str(doc["sealed"]), f"rdsadmin:{cluster.resource_id}")
        if not create:
            raise RuntimeFailure(f"the administrative credentials of cluster {cluster.identifier} are missing")
        password = secrets.token_urlsafe(32)
        self._store.put(KIND_ADMIN, cluster.account, cluster.resource_id,
                        {"sealed": self._sealer.seal_text(password, f"rdsadmin:{cluster.resource_id}")})
        return password

    # --- the layout: which server is what -----------------------------------------------------










    # --- the ClusterRuntime interface --------------------------------------------------------

    async def create_cluster(self, cluster: Cluster, master_password: str) -> None:
        admin = self._admin_password(cluster, create=True)
        self._save_layout(cluster, Layout(cluster.resource_id))
        self._clusters[cluster.resource_id] = cluster
        self._parameters[cluster.resource_id] = dict(cluster.parameters)
        try:
            server = await self._engine.create_server(
                cluster.resource_id, cluster.engine_version, admin_password=admin,
                master_username=cluster.master_username, master_password=master_password,
                database_name=cluster.database_name,
            )
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc
        # the parameters come after the bootstrap: a value PostgreSQL will not run with leaves a
        # complete cluster that starts once the value is fixed
        await self._run_with_parameters(server, cluster, restart=False, fresh=True)

    # --- snapshots: a base backup out, a new cluster in (rds/snapshots.py seals the bytes) -------------

    def admin_password_of(self, cluster: Cluster) -> str:
        """rdsadmin's password in the cluster's data (a snapshot carries it, sealed, to its restores)."""
        return self._admin_password(cluster)

    async def snapshot_cluster(self, cluster: Cluster, sink: Callable[[bytes], Any], *,
                               running_only: bool = False) -> None:
        """A consistent base backup of the running primary, as a tar stream to ``sink``; it keeps serving.
        ``running_only``: never start a server for it (a backup outside the cluster's turn: a stop or start
        may be under way)."""
        try:
            try:
                primary = self._server(cluster)
            except (EngineError, RuntimeFailure):
                if running_only:
                    raise RuntimeFailure(
                        f"the snapshot of {cluster.identifier} failed: its server does not run") from None
                primary = await self._ensure_server(cluster)  # not served since auroral started
            started = False
            if primary.status() != "running" and running_only:
                raise RuntimeFailure(f"the snapshot of {cluster.identifier} failed: its server does not run")
            if primary.status() != "running":  # a stopped cluster (a final snapshot): up for the backup only
                await primary.start()
                started = True
            try:
                await primary.base_backup(sink)
            finally:
                if started:
                    await primary.stop()
        except (EngineError, psycopg.Error, OSError) as exc:
            raise RuntimeFailure(f"the snapshot of {cluster.identifier} failed: {_first_line(exc)}") from exc

    async def restore_cluster(self, cluster: Cluster, chunks: AsyncIterator[bytes], admin_password: str,
                              wal: AsyncIterator[tuple[str, bytes]] | None = None,
                              target_time: str | None = None) -> None:
        """A new cluster whose primary is made from a snapshot's tar stream and started with the new
        cluster's parameters. rdsadmin's password is the source's (it is in the data): stored first.
        ``wal``: archived segments to replay up to ``target_time`` (a point-in-time restore)."""
        self._store.put(KIND_ADMIN, cluster.account, cluster.resource_id,
                        {"sealed": self._sealer.seal_text(admin_password, f"rdsadmin:{cluster.resource_id}")})
        self._save_layout(cluster, Layout(cluster.resource_id))
        self._clusters[cluster.resource_id] = cluster
        self._parameters[cluster.resource_id] = dict(cluster.parameters)
        try:
            server = await self._engine.restore_server(cluster.resource_id, cluster.engine_version,
                                                       admin_password=admin_password, chunks=chunks, wal=wal,
                                                       target_time=target_time)
        except (EngineError, OSError) as exc:
            raise RuntimeFailure(f"the restore failed: {_first_line(exc)}") from exc
        await self._run_with_parameters(server, cluster, restart=False)

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
            log.warning("cluster %s: flushing WAL failed: %s", cluster.identifier, _first_line(exc))
        return False

    async def _ensure_server(self, cluster: Cluster) -> PgServer:
        """The cluster's primary, its servers recovered from disk after a restart of auroral, an
        interrupted failover settled, and every other server told to follow the primary."""
        self._clusters[cluster.resource_id] = cluster
        try:
            self._engine.get_server(cluster.resource_id)
        except EngineError:
            admin = self._admin_password(cluster)
            await self._engine.recover({cluster.resource_id: admin}, start=False)
        layout = self._layout(cluster)
        if layout.failover is not None:
            await self._settle_failover(cluster, layout)
        primary = self._server(cluster)
        await primary.follow(None)
        for server in self._servers(cluster):
            if server is not primary:
                await server.follow(Standby(primary.socket_dir, slot_name(server.server_id)))
        return primary


    async def _run_with_parameters(self, server: PgServer, cluster: Cluster, *, restart: bool,
                                   fresh: bool = False) -> None:
        """Write every PostgreSQL setting of ``cluster.parameters`` and (re)start the server with them
        (``fresh``: a new server, with nothing to reset; resetting a static setting would restart it).
        A refusal that names one of them is ``IncompatibleParameters``; one that names something else
        (a setting of the data directory's own files) is not the parameter group's to fix."""
        await self._tell_topology(cluster, server)
        settings = all_pg_settings(cluster.parameters)
        if fresh:
            settings = {name: value for name, value in settings.items() if value is not None}
        ours = {name.lower() for name, value in settings.items() if value is not None}

        def names_ours(text: str) -> bool:
            return bool(ours & {word.strip(".") for word in _WORD.split(text.lower())})

        try:
            change = await server.set_parameters(settings)
            running = server.status() == "running"
            if running and (restart or change.pending_reboot):
                await server.restart()
            elif not running:
                await server.start()
        except ParameterError as exc:
            if not names_ours(str(exc)):
                raise RuntimeFailure(str(exc)) from exc
            # PostgreSQL's own check refused a value before anything changed: the server would not
            # come back with it, so it does not keep running on the old values either
            try:
                await server.stop()
            except EngineError as stop_exc:
                log.warning("cluster %s: stopping failed: %s", cluster.identifier, stop_exc)
            raise IncompatibleParameters(_first_line(exc)) from exc
        except ServerStartError as exc:
            reason = config_rejection(exc.log_tail)
            if reason is None or not names_ours(reason):
                raise RuntimeFailure(str(exc)) from exc
            raise IncompatibleParameters(reason) from exc
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc

    async def start_cluster(self, cluster: Cluster) -> None:
        self._parameters[cluster.resource_id] = dict(cluster.parameters)
        try:
            server = await self._ensure_server(cluster)
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc
        await self._run_with_parameters(server, cluster, restart=False)
        await self._run_standbys(cluster, restart=False)

    async def _run_standbys(self, cluster: Cluster, *, restart: bool) -> None:
        """Start (or restart) every standby with the cluster's parameters, after the primary. One that will
        not start is logged (its instance fails when its endpoint opens); a server to clone is cloned."""
        primary = self._server(cluster)
        layout = self._layout(cluster)
        await self._drop_stale_slots(cluster, primary)
        for sid in list(layout.diverged):
            try:
                await self._bring_back(cluster, self._engine.get_server(sid), primary, clean=False)
            except (EngineError, psycopg.Error, OSError) as exc:
                log.warning("cluster %s: %s not brought back: %s", cluster.identifier, sid, _first_line(exc))
                continue
            layout.diverged.remove(sid)
            self._save_layout(cluster, layout)
        for server in self._servers(cluster):
            if server is primary:
                continue
            try:
                await self._run_with_parameters(server, cluster, restart=restart)
            except RuntimeFailure as exc:
                log.warning("cluster %s: standby %s did not start: %s", cluster.identifier, server.server_id,
                            exc.reason)


    async def stop_cluster(self, cluster: Cluster) -> None:
        # the primary first: a fast shutdown sends the standbys all of its WAL before it exits
        try:
            self._engine.get_server(cluster.resource_id)
        except EngineError:
            return
        try:
            for server in self._servers(cluster):
                await server.stop()
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc

    async def delete_cluster(self, cluster: Cluster) -> None:
        try:
            try:
                self._engine.get_server(cluster.resource_id)
            except EngineError:
                doc = self._store.get(KIND_ADMIN, cluster.account, cluster.resource_id)
                if doc is None:
                    return
                await self._engine.recover({cluster.resource_id: self._admin_password(cluster)}, start=False)
                self._engine.get_server(cluster.resource_id)
            await self._engine.delete_server(cluster.resource_id)
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc
        finally:
            self._parameters.pop(cluster.resource_id, None)
        self._store.delete(KIND_SERVERS, cluster.account, cluster.resource_id)
        self._layouts.pop(cluster.resource_id, None)
        self._lag.pop(cluster.resource_id, None)
        self._clusters.pop(cluster.resource_id, None)
        self._ship_locks.pop(cluster.resource_id, None)
        self._store.delete(KIND_ADMIN, cluster.account, cluster.resource_id)

    async def reboot_cluster(self, cluster: Cluster) -> None:
        self._parameters[cluster.resource_id] = dict(cluster.parameters)
        try:
            server = await self._ensure_server(cluster)
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc
        await self._run_with_parameters(server, cluster, restart=True)
        await self._run_standbys(cluster, restart=True)

    async def upgrade_cluster(self, cluster: Cluster) -> None:
        """Run the cluster on ``cluster.engine_version`` (the target; every endpoint is closed). The same
        major: every server restarts on that major's installation. A newer major: every server stops, the
        standbys are removed (their instances' endpoints clone new ones from the upgraded primary when they
        open), ``pg_upgrade`` runs on the primary (``PgServer.upgrade_major``), and the primary starts on
        the new major with the cluster's (new) parameters, the Aurora functions and the role options of
        that major. Run again after a restart of auroral, it picks up where it stopped."""
        self._clusters[cluster.resource_id] = cluster
        self._parameters[cluster.resource_id] = dict(cluster.parameters)
        try:
            primary = await self._ensure_server(cluster)
            target = await self._engine.installation_for(cluster.engine_version)  # fetched if needed
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc
        if target.major == primary.major:
            self._engine.finish_upgrade(primary)  # an upgrade done before a restart leaves its old directory
            await self._run_with_parameters(primary, cluster, restart=True)
            await self._run_standbys(cluster, restart=True)
            return
        started = time.monotonic()
        try:
            for server in self._servers(cluster):  # the primary first: the standbys get all of its WAL
                await server.stop()
            for server in self._servers(cluster):
                if server is not primary:
                    await self._drop_server(cluster, server.server_id)
                    self._lag.get(cluster.resource_id, {}).pop(server.server_id, None)
            await self._engine.upgrade_server(primary.server_id, cluster.engine_version)
        except EngineError as exc:
            detail = getattr(exc, "log_tail", "") or ""
            raise RuntimeFailure(f"the major version upgrade failed: {_first_line(exc)} {detail[-600:]}".strip()) from exc
        except OSError as exc:
            raise RuntimeFailure(f"the major version upgrade failed: {exc}") from exc
        await self._run_with_parameters(primary, cluster, restart=False)
        try:
            await primary.rebootstrap(cluster.master_username)
        except (EngineError, psycopg.Error) as exc:
            raise RuntimeFailure(f"after the upgrade, the roles could not be updated: {_first_line(exc)}") from exc
        self._engine.finish_upgrade(primary)
        log.info("cluster %s: upgraded to PostgreSQL %s in %.1f s", cluster.identifier, target.major,
                 time.monotonic() - started)

    async def reboot_instance(self, cluster: Cluster, instance: Instance) -> None:
        server = self.server_of(cluster, instance)
        if server is None or server.status() == "not-initialized":
            return
        self._parameters[cluster.resource_id] = dict(cluster.parameters)
        await self._run_with_parameters(server, cluster, restart=True)

    async def reset_master_password(self, cluster: Cluster, password: str) -> None:
        try:
            await self._server(cluster).reset_master(cluster.master_username, password)
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc

    async def set_master_password(self, cluster: Cluster, password: str) -> None:
        # Only the SCRAM verifier travels to PostgreSQL: the password never shows in its logs.
        statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(cluster.master_username), sql.Literal(scram_verifier(password)))
        try:
            await self._server(cluster).run_admin_sql(statement)
        except (EngineError, psycopg.Error) as exc:
            raise RuntimeFailure(f"setting the master password failed: {_first_line(exc)}") from exc

    async def check_master_login(self, cluster: Cluster, password: str) -> None:
        # The private socket authenticates with scram-sha-256 like the endpoint, without the
        # gateway's network rules or IAM authentication in the way: exactly "does this password log in".
        server = self._server(cluster)
        try:
            connection = await connect(server.socket_dir, password, "postgres", user=cluster.master_username)
            async with connection:
                await connection.execute("SELECT 1")
        except psycopg.Error as exc:
            raise RuntimeFailure(f"a login with the new master password failed: {_first_line(exc)}") from exc

    async def apply_parameters(self, cluster: Cluster, values: Mapping[str, str]) -> None:
        self._parameters.setdefault(cluster.resource_id, {}).update(values)
        changes = pg_settings(values)
        if not changes:
            return
        try:
            for server in self._servers(cluster):
                await server.set_parameters(changes)
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc

    def _force_ssl(self, cluster_rid: str) -> Callable[[], bool]:
        return lambda: self._parameters.get(cluster_rid, {}).get("rds.force_ssl", "0") == "1"

    def _max_connections(self, cluster_rid: str) -> Callable[[], int]:
        """Per instance (each endpoint counts its own connections), the value the server runs with: a
        static parameter, so a change waits for the reboot that hands it to the server."""
        return lambda: max_connections_of(self._parameters.get(cluster_rid, {}))

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

    async def _server_for(self, cluster: Cluster, instance: Instance) -> PgServer:
        """The server ``instance`` runs on, made now if it has none: the primary for the cluster's first
        writer (while no instance runs there), else a new standby of the primary (recorded first)."""
        layout = self._layout(cluster)
        sid = layout.instances.get(instance.resource_id)
        if sid is None:
            primary_free = layout.instance_on(layout.primary) is None
            sid = layout.primary if instance.is_writer and primary_free else instance.resource_id
            layout.instances[instance.resource_id] = sid
            self._save_layout(cluster, layout)
        try:
            server = self._engine.get_server(sid)
        except EngineError:
            server = None
        if server is not None and server.status() != "not-initialized":
            return server
        primary = self._server(cluster)
        started = time.monotonic()
        try:
            server = await self._engine.create_replica(cluster.resource_id, sid, primary, slot_name(sid))
        except (EngineError, psycopg.Error, OSError) as exc:
            raise RuntimeFailure(f"the replica of {instance.identifier} could not be made: {_first_line(exc)}") from exc
        log.info("cluster %s: replica %s streams from %s (%.2f s)", cluster.identifier, instance.identifier,
                 primary.server_id, time.monotonic() - started)
        return server

    async def open_endpoint(self, cluster: Cluster, instance: Instance) -> tuple[str, int]:
        self._clusters[cluster.resource_id] = cluster
        server = await self._server_for(cluster, instance)
        if server.status() != "running":
            try:
                await server.start()
            except EngineError as exc:
                raise RuntimeFailure(f"the server of {instance.identifier} does not run: {_first_line(exc)}") from exc
        layout = self._layout(cluster)
        if instance.is_writer and layout.primary != server.server_id and layout.instance_on(layout.primary) is None:
            # the writer instance was deleted while the cluster was stopped and this reader flagged the
            # writer in its place: promote it now (the instance-less primary is removed)
            await self.failover(cluster, instance, rejoin=False)
        self._parameters.setdefault(cluster.resource_id, dict(cluster.parameters))
        target = server.socket_dir / f".s.PGSQL.{server.port}"
        cfg = EndpointConfig(
            endpoint_id=instance.resource_id,
            host="",
            port=0,
            target_socket=target,
            virtual_port=cluster.port,  # the listening port, except on a shared AURORAL_ENDPOINT_HOST
            server_names=self._server_names(cluster, instance),
            force_ssl=self._force_ssl(cluster.resource_id),
            max_connections=self._max_connections(cluster.resource_id),
            decide=self.decide_for(cluster, instance),
            source_space=self.source_space_for(cluster, instance),
            authenticate=self.authenticate_for(cluster, instance),
            unearned_trust=self.unearned_trust_for(cluster, instance),
            reserved_users=RESERVED_ROLES,
        )

        async def open_at(host: str, port: int) -> int:
            cfg.host, cfg.port = host, port
            return await self._gateway.open(cfg)

        try:
            if self._host is None and self.placement_for is not None:
                # the instance's own address, on the cluster's port (rds/addresses.py)
                bound = await bind_endpoint(open_at, self.placement_for(cluster, instance), cluster.port)
            else:
                bound = await self._open_on_shared_host(open_at, instance)
        except (OSError, PlacementError, LookupError) as exc:
            raise RuntimeFailure(f"cannot open an endpoint for {instance.identifier}: {exc}") from exc
        self._bound[instance.resource_id] = bound
        self._names[instance.resource_id] = instance.identifier
        if self._layout(cluster).primary == server.server_id:
            self._writer[cluster.resource_id] = instance.resource_id
        await self._tell_topology_all(cluster)
        self._start_lag_refresh()
        if self._expiry_task is None or self._expiry_task.done():
            self._expiry_task = asyncio.get_running_loop().create_task(self._expire_logs(), name="log-expiry")
        self._start_shipping()
        return bound

    def _server_names(self, cluster: Cluster, instance: Instance) -> tuple[str, ...]:
        """The names an endpoint's certificate covers: the account's wildcards (``endpoints.py``) and the
        bare identifiers."""
        return (*certificate_names(self._store, cluster.account, cluster.region),
                instance.identifier, cluster.identifier, "localhost")

    async def rename_instance(self, cluster: Cluster, instance: Instance) -> None:
        """The instance has a new identifier: ``aurora_db_instance_identifier()`` on its server and
        ``aurora_replica_status()`` on every server report it, its certificate names it, and its sessions
        are closed (AWS reboots a renamed instance; clients reconnect by the new name)."""
        self._clusters[cluster.resource_id] = cluster
        if instance.resource_id not in self._names:
            return  # not serving: open_endpoint names it when it opens
        self._names[instance.resource_id] = instance.identifier
        with contextlib.suppress(KeyError):
            await self._gateway.update(instance.resource_id, server_names=self._server_names(cluster, instance))
        await self._tell_topology_all(cluster)
        await self._gateway.drop_sessions(instance.resource_id)

    async def _open_on_shared_host(self, open_at: Callable[[str, int], Awaitable[int]],
                                   instance: Instance) -> tuple[str, int]:
        """One address for every endpoint (``AURORAL_ENDPOINT_HOST``, or no placement): a port of the
        instance's own, kept across restarts while it is free."""
        host = self._host or "127.0.0.1"
        if instance.endpoint_port and instance.address == host:
            try:
                return host, await open_at(host, instance.endpoint_port)
            except OSError:
                pass  # the remembered port is taken by someone else now: take a new one
        return host, await open_at(host, _free_port(host))

    async def close_endpoint(self, cluster: Cluster, instance: Instance) -> None:
        if self._writer.get(cluster.resource_id) == instance.resource_id:
            del self._writer[cluster.resource_id]
        if self._names.pop(instance.resource_id, None) is not None:
            with contextlib.suppress(EngineError, RuntimeFailure):
                await self._tell_topology_all(cluster)
        self._bound.pop(instance.resource_id, None)
        await self._gateway.close(instance.resource_id)

    async def delete_instance(self, cluster: Cluster, instance: Instance) -> None:
        """The instance is gone (its endpoint closed): a standby's server and its slot on the primary go
        with it; the primary's instance leaves the primary serving as the cluster volume."""
        layout = self._layout(cluster)
        sid = layout.instances.pop(instance.resource_id, None)
        self._save_layout(cluster, layout)
        if sid is None or sid == layout.primary:
            return
        try:
            await self._drop_server(cluster, sid)
            primary = self._server(cluster)
            if primary.status() == "running":
                await primary.drop_slot(slot_name(sid))
        except (EngineError, psycopg.Error, OSError) as exc:
            raise RuntimeFailure(f"removing the server of {instance.identifier} failed: {_first_line(exc)}") from exc
        self._lag.get(cluster.resource_id, {}).pop(sid, None)



    # --- failover -------------------------------------------------------------------------------






    # --- IAM database authentication: every server trusts the gateway for the same users ------------

    def iam_users(self, cluster: Cluster) -> set[str]:
        return self._server(cluster).iam_users()

    async def set_iam_users(self, cluster: Cluster, names: Iterable[str], *, wait_user: str | None = None,
                            listed: bool = True) -> None:
        """``PgServer.set_iam_users`` on every server of the cluster (each instance's endpoint relays to
        its own); a stopped one gets the list too, for its next start."""
        names = set(names)
        for server in self._servers(cluster):
            if server.status() == "running":
                await server.set_iam_users(names, wait_user=wait_user, listed=listed)
            else:
                server.write_iam_users(names)

    async def network_changed(self) -> None:
        """Something the endpoints' network decisions read may have changed (an EC2 or RDS call): bring
        the listeners' kernel filters up to date before the caller answers, so that the next connection
        meets the new rules."""
        await self._gateway.refresh_filters()

    def network_changed_later(self) -> None:
        """The same, soon (from any thread): for changes made outside an API call."""
        self._gateway.schedule_refresh()

    # --- for IAM database authentication (rds/iam_db_auth.py) ----------------------------------

    def pg_server(self, cluster: Cluster) -> PgServer:
        return self._server(cluster)

    async def admin_connection(self, cluster: Cluster, instance: Instance | None = None, *,
                               dbname: str = "postgres") -> psycopg.AsyncConnection[tuple[Any, ...]]:
        """A new ``rdsadmin`` connection over the private socket (the caller keeps and closes it) of the
        primary, or of ``instance``'s own server (a reader's is read-only), to ``dbname`` (the security
        advisor reads each database's schemas and table statistics)."""
        server = self._server(cluster)
        if instance is not None:
            sid = self._layout(cluster).instances.get(instance.resource_id)
            if sid is not None:
                try:
                    server = self._engine.get_server(sid)
                except EngineError:
                    raise RuntimeFailure(f"the server of {instance.identifier} is not known") from None
        return await connect(server.socket_dir, self._admin_password(cluster), dbname)

    def endpoint_address(self, instance: Instance) -> tuple[str, int] | None:
        """Where the instance's endpoint listens (its DNS name resolves there; the cluster endpoint is
        the writer's)."""
        return self._bound.get(instance.resource_id)

    def cluster_endpoint(self, cluster: Cluster) -> tuple[str, int] | None:
        writer = self._writer.get(cluster.resource_id)
        return None if writer is None else self._bound.get(writer)

    async def warm_up(self) -> None:
        """Build the template data directory of the newest installed major ahead of the first create
        (only the first start of an installation has anything to do; nothing is fetched here)."""
        pool = self._engine.pool()
        if pool:
            await self._engine.templates.ensure(self._engine.installation(str(pool[0].major)))

    async def close(self) -> None:
        """auroral is shutting down: close every listener and stop every server (data stays)."""
        self._bound.clear()
        for task in [self._lag_task, self._expiry_task, self._ship_task, *self._watch.values()]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._lag_task = None
        self._expiry_task = None
        self._ship_task = None
        self._watch.clear()
        await self._gateway.close_all()
        await self._engine.close()

    # --- replica lag ---------------------------------------------------------------------------


