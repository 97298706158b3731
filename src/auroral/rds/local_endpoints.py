"""The endpoints of :class:`~auroral.rds.local_runtime.LocalRuntime`: one gateway listener per instance,
relaying to the instance's own server (made on first use: the primary for the first writer, else a new
standby), on the instance's own address and the cluster's port, or on ``AURORAL_ENDPOINT_HOST`` with a port
of its own; the names its certificate covers and the network hooks (security groups, IAM authentication)
each listener consults.

Separate because it is the gateway's side of the runtime: what it opens, where, and with which rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable

import psycopg

from auroral.engine import EngineError, PgServer
from auroral.engine.bootstrap import RESERVED_ROLES
from auroral.gateway import EndpointConfig
from auroral.gateway.decision import Authenticate, Decide, SourceSpace, UnearnedTrust
from auroral.rds.addresses import Placement, PlacementError, bind_endpoint
from auroral.rds.endpoints import certificate_names
from auroral.rds.local_parameters import max_connections_of
from auroral.rds.local_replicas import first_line, slot_name
from auroral.rds.local_server_files import ServerFiles
from auroral.rds.model import Cluster, Instance
from auroral.rds.runtime import RuntimeFailure

log = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Endpoints(ServerFiles):
    """Opening, renaming and closing the instances' endpoints for ``LocalRuntime`` (a mixin:
    ``LocalRuntime.__init__`` sets these)."""

    _host: str | None
    _bound: dict[str, tuple[str, int]]  # instance resource id -> (address, port) listening
    _expiry_task: asyncio.Task[None] | None  # removes log files past their retention
    decide_for: Callable[[Cluster, Instance], Decide]
    authenticate_for: Callable[[Cluster, Instance], Authenticate | None]
    unearned_trust_for: Callable[[Cluster, Instance], UnearnedTrust | None]
    placement_for: Callable[[Cluster, Instance], Placement] | None
    source_space_for: Callable[[Cluster, Instance], Callable[[], SourceSpace | None] | None]

    def _force_ssl(self, cluster_rid: str) -> Callable[[], bool]:
        return lambda: self._parameters.get(cluster_rid, {}).get("rds.force_ssl", "0") == "1"

    def _max_connections(self, cluster_rid: str) -> Callable[[], int]:
        """Per instance (each endpoint counts its own connections), the value the server runs with: a
        static parameter, so a change waits for the reboot that hands it to the server."""
        return lambda: max_connections_of(self._parameters.get(cluster_rid, {}))

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
            raise RuntimeFailure(f"the replica of {instance.identifier} could not be made: {first_line(exc)}") from exc
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
                raise RuntimeFailure(f"the server of {instance.identifier} does not run: {first_line(exc)}") from exc
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

    async def network_changed(self) -> None:
        """Something the endpoints' network decisions read may have changed (an EC2 or RDS call): bring
        the listeners' kernel filters up to date before the caller answers, so that the next connection
        meets the new rules."""
        await self._gateway.refresh_filters()

    def network_changed_later(self) -> None:
        """The same, soon (from any thread): for changes made outside an API call."""
        self._gateway.schedule_refresh()

    def endpoint_address(self, instance: Instance) -> tuple[str, int] | None:
        """Where the instance's endpoint listens (its DNS name resolves there; the cluster endpoint is
        the writer's)."""
        return self._bound.get(instance.resource_id)

    def cluster_endpoint(self, cluster: Cluster) -> tuple[str, int] | None:
        writer = self._writer.get(cluster.resource_id)
        return None if writer is None else self._bound.get(writer)
