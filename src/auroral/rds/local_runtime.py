"""The real ``ClusterRuntime``: PostgreSQL servers from ``auroral.engine`` behind endpoint
listeners from ``auroral.gateway``, on this machine.

* One PostgreSQL server per cluster (keyed by ``DbClusterResourceId``); its ``rdsadmin``
  password is random, sealed in the store *before* the server is created, and used again by
  ``recover`` after a restart.
* One gateway listener per instance (keyed by ``DbiResourceId``); an instance keeps its port
  across restarts so clients reconnect where they were.
* Cluster parameters: the PostgreSQL settings among them go to the server; ``rds.force_ssl`` is
  read by the listener on every new connection. ``rds.restrict_password_commands`` is a setting of
  auroral's server module ``auroral_rds`` (compiled at run time, see ``engine/extension.py``); where
  it could not be built, setting it to 1 is refused (``parameter_refusal``). Every start writes all of
  them (a parameter the group no longer sets goes back to the engine's default) and PostgreSQL judges
  the values: a refusal, or a server that exits at start because of them, is ``IncompatibleParameters``
  (the server stays stopped, its data intact). ``timezone`` may be any zone of the tz database the
  serving PostgreSQL reads (``allowed_values``, ``engine/timezones.py``).
* Each server knows what Aurora's functions report (``engine/aurora.py``): the cluster's EngineVersion
  and its writer instance (the one row of ``aurora_replica_status()``), told before every start and
  whenever the writer's endpoint opens or closes.
* Only PostgreSQL 16 and newer serve clusters by default: before 16 a ``CREATEROLE`` role can
  grant itself ``pg_execute_server_program`` and run programs as the server's OS user, which
  Aurora's master user must not be able to do. ``AURORAL_ALLOW_PG_BELOW_16=1`` lifts this.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from auroral.crypto import Sealer
from auroral.engine import (
    EngineError,
    Installation,
    LocalEngine,
    ParameterError,
    PgServer,
    ServerStartError,
    available,
    resolve,
)
from auroral.engine.aurora import Member, Topology
from auroral.engine.bootstrap import RESERVED_ROLES, scram_verifier
from auroral.engine.cluster import RESTRICT_PASSWORD_COMMANDS
from auroral.engine.conf import DEFAULT_MAX_CONNECTIONS
from auroral.engine.postmaster import config_rejection, connect
from auroral.engine.timezones import timezone_names
from auroral.gateway import EndpointConfig, Gateway
from auroral.gateway.decision import Authenticate, Decide, SourceSpace, UnearnedTrust, allow_all
from auroral.rds.model import Cluster, Instance
from auroral.rds.runtime import IncompatibleParameters, RuntimeFailure, StatusListener
from auroral.store import Store

log = logging.getLogger(__name__)

KIND_ADMIN = "rds-admin-password"

# Aurora PostgreSQL majors AWS still offers.
AURORA_MAJORS = (13, 14, 15, 16, 17)

# Cluster parameters that are PostgreSQL settings (AWS's name == PostgreSQL's). Others (rds.*,
# ssl*) belong to the gateway or are shown only.
PG_SETTINGS = frozenset({
    "client_encoding", "idle_in_transaction_session_timeout", "log_connections", "log_disconnections",
    "log_min_duration_statement", "log_statement", "max_connections", "password_encryption",
    "statement_timeout", "timezone",
    # defined by auroral's server module auroral_rds (engine/extension.py); 0/1 are valid booleans
    "rds.restrict_password_commands",
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


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalRuntime:
    def __init__(
        self,
        data_dir: Path,
        store: Store,
        sealer: Sealer,
        gateway: Gateway,
        *,
        endpoint_host: str = "127.0.0.1",
        installations: list[Installation] | None = None,
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._gateway = gateway
        self._host = endpoint_host
        if installations is None:
            installations = available()
            if os.environ.get("AURORAL_ALLOW_PG_BELOW_16") != "1":
                installations = [i for i in installations if i.major >= 16]
        self._installations = installations
        self._engine = LocalEngine(data_dir, installations=installations,
                                   on_status_change=self._engine_status)
        self._listeners: list[StatusListener] = []
        self._parameters: dict[str, dict[str, str]] = {}
        self._writer: dict[str, str] = {}  # cluster resource id -> writer instance resource id
        self._writer_name: dict[str, str] = {}  # cluster resource id -> writer DBInstanceIdentifier
        self._allowed: dict[tuple[str, int], str | None] = {}
        # Network hooks, per endpoint: supplied by the network layer (security groups, IAM auth).
        self.decide_for: Callable[[Cluster, Instance], Decide] = lambda c, i: allow_all
        self.authenticate_for: Callable[[Cluster, Instance], Authenticate | None] = lambda c, i: None
        self.unearned_trust_for: Callable[[Cluster, Instance], UnearnedTrust | None] = lambda c, i: None
        # Where decide_for's verdict changes (for the listener's kernel filter); None: no filter.
        self.source_space_for: Callable[[Cluster, Instance], Callable[[], SourceSpace | None] | None] = \
            lambda c, i: None

    # --- bookkeeping -------------------------------------------------------------------------

    def available_majors(self) -> list[int]:
        """Aurora majors this runtime serves. Each runs on the nearest installed PostgreSQL major
        (the same major if installed, else the nearest newer one: ``engine.binaries.resolve``),
        and Describe* keeps reporting the version that was asked for."""
        if not self._installations:
            return []
        return list(AURORA_MAJORS)

    def allowed_values(self, name: str, major: int) -> str | None:
        if name != "timezone" or not self._installations:
            return None
        key = (name, major)
        if key not in self._allowed:
            try:
                names = timezone_names(resolve(str(major), self._installations))
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

    def _engine_status(self, cluster_id: str, status: str, reason: str) -> None:
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

    def _server(self, cluster: Cluster) -> PgServer:
        try:
            return self._engine.get_server(cluster.resource_id)
        except EngineError:
            raise RuntimeFailure(f"the PostgreSQL server of cluster {cluster.identifier} is not known") from None

    def _topology(self, cluster: Cluster) -> Topology:
        """What the cluster's server says it is (``aurora_version()``, ``aurora_db_instance_identifier()``,
        ``aurora_replica_status()``): today one instance, the writer."""
        writer = self._writer_name.get(cluster.resource_id, "")
        return Topology(engine_version=cluster.engine_version, instance_identifier=writer,
                        members=(Member(writer),) if writer else ())

    async def _tell_topology(self, cluster: Cluster, server: PgServer) -> None:
        try:
            await server.set_topology(self._topology(cluster))
        except (EngineError, psycopg.Error, OSError, ValueError) as exc:
            raise RuntimeFailure(f"the server of {cluster.identifier} did not take its topology: "
                                 f"{_first_line(exc)}") from exc

    # --- the ClusterRuntime interface --------------------------------------------------------

    async def create_cluster(self, cluster: Cluster, master_password: str) -> None:
        admin = self._admin_password(cluster, create=True)
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

    async def _ensure_server(self, cluster: Cluster) -> PgServer:
        """The cluster's server object, recovering it from disk after a restart of auroral."""
        try:
            return self._engine.get_server(cluster.resource_id)
        except EngineError:
            admin = self._admin_password(cluster)
            await self._engine.recover({cluster.resource_id: admin}, start=False)
            return self._server(cluster)

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

    async def stop_cluster(self, cluster: Cluster) -> None:
        try:
            server = self._engine.get_server(cluster.resource_id)
        except EngineError:
            return
        try:
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
        self._store.delete(KIND_ADMIN, cluster.account, cluster.resource_id)

    async def reboot_cluster(self, cluster: Cluster) -> None:
        self._parameters[cluster.resource_id] = dict(cluster.parameters)
        try:
            server = await self._ensure_server(cluster)
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc
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
            await self._server(cluster).set_parameters(changes)
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc

    def _force_ssl(self, cluster_rid: str) -> Callable[[], bool]:
        return lambda: self._parameters.get(cluster_rid, {}).get("rds.force_ssl", "0") == "1"

    def _max_connections(self, cluster_rid: str) -> Callable[[], int]:
        """Per instance (each endpoint counts its own connections), the value the server runs with: a
        static parameter, so a change waits for the reboot that hands it to the server."""
        return lambda: max_connections_of(self._parameters.get(cluster_rid, {}))

    async def open_endpoint(self, cluster: Cluster, instance: Instance) -> tuple[str, int]:
        server = self._server(cluster)
        self._parameters.setdefault(cluster.resource_id, dict(cluster.parameters))
        target = server.socket_dir / f".s.PGSQL.{server.port}"
        port = instance.endpoint_port or _free_port(self._host)
        cfg = EndpointConfig(
            endpoint_id=instance.resource_id,
            host=self._host,
            port=port,
            target_socket=target,
            virtual_port=cluster.port,
            server_names=(instance.identifier, cluster.identifier, "localhost"),
            force_ssl=self._force_ssl(cluster.resource_id),
            max_connections=self._max_connections(cluster.resource_id),
            decide=self.decide_for(cluster, instance),
            source_space=self.source_space_for(cluster, instance),
            authenticate=self.authenticate_for(cluster, instance),
            unearned_trust=self.unearned_trust_for(cluster, instance),
            reserved_users=RESERVED_ROLES,
        )
        try:
            bound = await self._gateway.open(cfg)
        except OSError as exc:
            if instance.endpoint_port is None:
                raise RuntimeFailure(f"cannot open an endpoint for {instance.identifier}: {exc}") from exc
            # The remembered port is taken by someone else now: take a new one.
            cfg.port = _free_port(self._host)
            bound = await self._gateway.open(cfg)
        if instance.is_writer:
            self._writer[cluster.resource_id] = instance.resource_id
            self._writer_name[cluster.resource_id] = instance.identifier
            await self._tell_topology(cluster, server)
        return self._host, bound

    async def close_endpoint(self, cluster: Cluster, instance: Instance) -> None:
        if self._writer.get(cluster.resource_id) == instance.resource_id:
            del self._writer[cluster.resource_id]
            self._writer_name.pop(cluster.resource_id, None)
            with contextlib.suppress(EngineError, RuntimeFailure):
                server = self._server(cluster)
                if server.status() == "running":
                    await self._tell_topology(cluster, server)
        await self._gateway.close(instance.resource_id)

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

    async def admin_connection(self, cluster: Cluster) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        """A new ``rdsadmin`` connection over the private socket (the caller keeps and closes it)."""
        return await connect(self._server(cluster).socket_dir, self._admin_password(cluster))

    def endpoint_address(self, instance: Instance) -> tuple[str, int] | None:
        """The address and port Describe reports for the instance's endpoint (the cluster endpoint is
        the writer's)."""
        try:
            return self._host, self._gateway.port(instance.resource_id)
        except KeyError:
            return None

    def cluster_endpoint(self, cluster: Cluster) -> tuple[str, int] | None:
        writer = self._writer.get(cluster.resource_id)
        if writer is None:
            return None
        try:
            return self._host, self._gateway.port(writer)
        except KeyError:
            return None

    async def warm_up(self) -> None:
        """Build the template data directory of the newest installation ahead of the first create
        (only the first start of an installation has anything to do)."""
        if self._installations:
            newest = max(self._installations, key=lambda i: i.major)
            await self._engine.templates.ensure(self._engine.installation(str(newest.major)))

    async def close(self) -> None:
        """auroral is shutting down: close every listener and stop every server (data stays)."""
        await self._gateway.close_all()
        await self._engine.close()
