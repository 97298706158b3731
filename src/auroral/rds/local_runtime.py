"""The real ``ClusterRuntime``: PostgreSQL servers from ``auroral.engine`` behind endpoint
listeners from ``auroral.gateway``, on this machine.

* PostgreSQL servers per cluster: the first (keyed by ``DbClusterResourceId``, the "cluster volume")
  is created with the cluster and served by its first writer; every further instance gets a server of
  its own, a physical streaming replica (hot standby) of the cluster's primary, cloned with
  ``pg_basebackup`` (``engine/replication.py``). Which server each instance runs on and which server is the
  primary is the cluster's *layout*, kept in the store (kind ``rds-servers``) and written before acting.
  The ``rdsadmin`` password (the same in every server: it is data) is random, sealed in the store
  *before* the first server is created, and used again by ``recover`` after a restart
  (``local_admin.py``).
* One gateway listener per instance (keyed by ``DbiResourceId``) relaying to that instance's own
  server, on the instance's own address (the loopback address of its RDS-managed network interface,
  ``rds/addresses.py``) and the cluster's port, so clients reconnect where they were after a restart.
  With an explicit ``endpoint_host`` (``AURORAL_ENDPOINT_HOST``) every listener is on that address with
  a port of its own instead (``local_endpoints.py``).
* Failover, the layout, the topology and the readers' lag: ``local_replicas.py`` (:class:`ReplicaSet`).
* Cluster parameters: the PostgreSQL settings among them go to the server; ``rds.force_ssl`` is
  read by the listener on every new connection. ``rds.restrict_password_commands`` is a setting of
  auroral's server module ``auroral_rds`` (compiled at run time, see ``engine/extension.py``); where
  it could not be built, setting it to 1 is refused (``parameter_refusal``). Every start writes all of
  them (a parameter the group no longer sets goes back to the engine's default) and PostgreSQL judges
  the values: a refusal, or a server that exits at start because of them, is ``IncompatibleParameters``
  (the server stays stopped, its data intact). ``timezone`` may be any zone of the tz database the
  serving PostgreSQL reads (``allowed_values``, ``engine/timezones.py``). All of it: ``local_parameters.py``.
* The archivers' finished WAL goes to the WAL archive, PostgreSQL's log files expire: ``local_server_files.py``.
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

:class:`LocalRuntime` itself is the clusters' lifecycle (create, start, stop, reboot, upgrade, delete,
snapshots and restores); each part named above is a mixin of its own module, which declares the state it
reads and leaves ``LocalRuntime.__init__`` to set it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg

from auroral import cbuild
from auroral.crypto import Sealer
from auroral.engine import EngineError, Installation, LocalEngine, PgServer, RestartPolicy, Standby
from auroral.engine.extension import ENV_ALLOW_BELOW_16
from auroral.gateway import Gateway
from auroral.gateway.decision import Authenticate, Decide, SourceSpace, UnearnedTrust, allow_all
from auroral.rds.addresses import Placement
from auroral.rds.local_admin import KIND_ADMIN, AdminAccess
from auroral.rds.local_endpoints import Endpoints
from auroral.rds.local_parameters import ClusterParameters
from auroral.rds.local_replicas import KIND_SERVERS, Layout, first_line, slot_name
from auroral.rds.local_server_files import WalListener
from auroral.rds.model import Cluster, Instance
from auroral.rds.runtime import RuntimeFailure, StatusListener
from auroral.store import Store

log = logging.getLogger(__name__)

# Aurora PostgreSQL majors AWS offers (18: unconfirmed whether Aurora offers it yet; served where the
# engine has it, listed by engine_versions only if it knows 18's minors).
AURORA_MAJORS = (13, 14, 15, 16, 17, 18)

# Engine status -> RDS status for events the engine observes by itself.
_STATUS = {"running": "available", "failed": "failed", "starting": "available", "stopped": "stopped"}


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


class LocalRuntime(Endpoints, AdminAccess, ClusterParameters):
    """The clusters' lifecycle on this machine, with the parts of the other ``local_*`` modules."""

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
            raise RuntimeFailure(f"the snapshot of {cluster.identifier} failed: {first_line(exc)}") from exc

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
            raise RuntimeFailure(f"the restore failed: {first_line(exc)}") from exc
        await self._run_with_parameters(server, cluster, restart=False)

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
                log.warning("cluster %s: %s not brought back: %s", cluster.identifier, sid, first_line(exc))
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
            raise RuntimeFailure(f"the major version upgrade failed: {first_line(exc)} {detail[-600:]}".strip()) from exc
        except OSError as exc:
            raise RuntimeFailure(f"the major version upgrade failed: {exc}") from exc
        await self._run_with_parameters(primary, cluster, restart=False)
        try:
            await primary.rebootstrap(cluster.master_username)
        except (EngineError, psycopg.Error) as exc:
            raise RuntimeFailure(f"after the upgrade, the roles could not be updated: {first_line(exc)}") from exc
        self._engine.finish_upgrade(primary)
        log.info("cluster %s: upgraded to PostgreSQL %s in %.1f s", cluster.identifier, target.major,
                 time.monotonic() - started)

    async def reboot_instance(self, cluster: Cluster, instance: Instance) -> None:
        server = self.server_of(cluster, instance)
        if server is None or server.status() == "not-initialized":
            return
        self._parameters[cluster.resource_id] = dict(cluster.parameters)
        await self._run_with_parameters(server, cluster, restart=True)

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
            raise RuntimeFailure(f"removing the server of {instance.identifier} failed: {first_line(exc)}") from exc
        self._lag.get(cluster.resource_id, {}).pop(sid, None)

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

