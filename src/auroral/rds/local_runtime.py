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
  it could not be built, setting it to 1 is refused (``parameter_refusal``).
* Only PostgreSQL 16 and newer serve clusters by default: before 16 a ``CREATEROLE`` role can
  grant itself ``pg_execute_server_program`` and run programs as the server's OS user, which
  Aurora's master user must not be able to do. ``AURORAL_ALLOW_PG_BELOW_16=1`` lifts this.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from auroral.crypto import Sealer
from auroral.engine import EngineError, Installation, LocalEngine, PgServer, available
from auroral.engine.bootstrap import RESERVED_ROLES, scram_verifier
from auroral.engine.cluster import RESTRICT_PASSWORD_COMMANDS
from auroral.engine.postmaster import connect
from auroral.gateway import EndpointConfig, Gateway
from auroral.gateway.decision import Authenticate, Decide, UnearnedTrust, allow_all
from auroral.rds.model import Cluster, Instance
from auroral.rds.runtime import RuntimeFailure, StatusListener
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

# Engine status -> RDS status for events the engine observes by itself.
_STATUS = {"running": "available", "failed": "failed", "starting": "available", "stopped": "stopped"}


def pg_settings(values: Mapping[str, str]) -> dict[str, str | None]:
    return {k: (v if v != "" else None) for k, v in values.items() if k in PG_SETTINGS}


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
        self._listener: StatusListener | None = None
        self._parameters: dict[str, dict[str, str]] = {}
        self._writer: dict[str, str] = {}  # cluster resource id -> writer instance resource id
        # Network hooks, per endpoint: supplied by the network layer (security groups, IAM auth).
        self.decide_for: Callable[[Cluster, Instance], Decide] = lambda c, i: allow_all
        self.authenticate_for: Callable[[Cluster, Instance], Authenticate | None] = lambda c, i: None
        self.unearned_trust_for: Callable[[Cluster, Instance], UnearnedTrust | None] = lambda c, i: None

    # --- bookkeeping -------------------------------------------------------------------------

    def available_majors(self) -> list[int]:
        """Aurora majors this runtime serves. Each runs on the nearest installed PostgreSQL major
        (the same major if installed, else the nearest newer one: ``engine.binaries.resolve``),
        and Describe* keeps reporting the version that was asked for."""
        if not self._installations:
            return []
        return list(AURORA_MAJORS)

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
        self._listener = fn

    def _engine_status(self, cluster_id: str, status: str, reason: str) -> None:
        mapped = _STATUS.get(status)
        if mapped is not None and self._listener is not None:
            self._listener(cluster_id, mapped, reason or None)

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

    # --- the ClusterRuntime interface --------------------------------------------------------

    async def create_cluster(self, cluster: Cluster, master_password: str) -> None:
        admin = self._admin_password(cluster, create=True)
        self._parameters[cluster.resource_id] = dict(cluster.parameters)
        try:
            await self._engine.create_server(
                cluster.resource_id, cluster.engine_version, admin_password=admin,
                master_username=cluster.master_username, master_password=master_password,
                database_name=cluster.database_name,
                parameters={k: v for k, v in pg_settings(cluster.parameters).items() if v is not None},
            )
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc

    async def _ensure_server(self, cluster: Cluster) -> PgServer:
        """The cluster's server object, recovering it from disk after a restart of auroral."""
        try:
            return self._engine.get_server(cluster.resource_id)
        except EngineError:
            admin = self._admin_password(cluster)
            await self._engine.recover({cluster.resource_id: admin}, start=False)
            return self._server(cluster)

    async def start_cluster(self, cluster: Cluster) -> None:
        self._parameters[cluster.resource_id] = dict(cluster.parameters)
        try:
            server = await self._ensure_server(cluster)
            await server.set_parameters(pg_settings(cluster.parameters))
            if server.status() != "running":
                await server.start()
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc

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
            await server.set_parameters(pg_settings(cluster.parameters))
            await server.restart()
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc

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
            decide=self.decide_for(cluster, instance),
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
        return self._host, bound

    async def close_endpoint(self, cluster: Cluster, instance: Instance) -> None:
        if self._writer.get(cluster.resource_id) == instance.resource_id:
            del self._writer[cluster.resource_id]
        await self._gateway.close(instance.resource_id)

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
