"""Injectable fakes for unit tests of the RDS provider: an in-memory ``FakeRuntime`` implementing
the ``ClusterRuntime`` protocol (no PostgreSQL, no sockets), a ``FakeDirectory`` for the
service-linked role, and a ``FakeAuthorizer`` that records and optionally denies actions."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auroral.api.context import Principal, RequestContext
from auroral.engine.timezones import SYSTEM_TZDATA, names_in
from auroral.errors import AccessDenied
from auroral.rds.model import Cluster, Instance
from auroral.rds.runtime import IncompatibleParameters, RuntimeFailure, StatusListener

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class FakeServer:
    running: bool = False
    password: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    applied: list[dict[str, str]] = field(default_factory=list)
    reboots: int = 0


class FakeRuntime:
    """Records every call; ``fail[op] = reason`` makes the next calls of ``op`` raise RuntimeFailure,
    ``incompatible[op] = reason`` IncompatibleParameters (the server keeps its data, stopped)."""

    def __init__(self, majors: Sequence[int] = (15, 16)) -> None:
        self.majors = list(majors)
        self.servers: dict[str, FakeServer] = {}
        self.endpoints: dict[str, tuple[str, int]] = {}
        self.writer: dict[str, str] = {}  # cluster resource id -> writer dbi resource id
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[str, str] = {}
        self.incompatible: dict[str, str] = {}
        self.listener: StatusListener | None = None
        self._next_port = 40000
        self.refusals: dict[tuple[str, str], str] = {}  # (name, value) -> reason
        self.gates: dict[str, asyncio.Event] = {}  # op -> set when the op may finish (a slow provisioning)
        self.failovers: list[tuple[str, bool]] = []  # (target dbi resource id, rejoin)
        self.renamed: list[tuple[str, str]] = []  # (dbi resource id, new identifier)
        self.log_dirs: dict[str, Path] = {}  # dbi resource id -> its log directory

    def _maybe_fail(self, op: str, target: str) -> None:
        self.calls.append((op, target))
        if op in self.fail:
            raise RuntimeFailure(self.fail[op])

    def _maybe_incompatible(self, op: str, target: str) -> None:
        if op in self.incompatible:
            self.servers[target].running = False
            raise IncompatibleParameters(self.incompatible[op])

    def available_majors(self) -> list[int]:
        return list(self.majors)

    def allowed_values(self, name: str, major: int) -> str | None:
        # the machine's tz database (LocalRuntime: the one its PostgreSQL reads)
        return ",".join(sorted(names_in(SYSTEM_TZDATA))) if name == "timezone" else None

    def parameter_refusal(self, name: str, value: str, major: int) -> str | None:
        return self.refusals.get((name, value))

    async def create_cluster(self, cluster: Cluster, master_password: str) -> None:
        if "create_cluster" in self.gates:
            await self.gates["create_cluster"].wait()
        self._maybe_fail("create_cluster", cluster.resource_id)
        self.servers[cluster.resource_id] = FakeServer(True, master_password, dict(cluster.parameters))
        self._maybe_incompatible("create_cluster", cluster.resource_id)

    async def start_cluster(self, cluster: Cluster) -> None:
        self._maybe_fail("start_cluster", cluster.resource_id)
        server = self.servers.setdefault(cluster.resource_id, FakeServer())
        server.parameters = dict(cluster.parameters)
        self._maybe_incompatible("start_cluster", cluster.resource_id)
        server.running = True

    async def stop_cluster(self, cluster: Cluster) -> None:
        self._maybe_fail("stop_cluster", cluster.resource_id)
        if cluster.resource_id in self.servers:
            self.servers[cluster.resource_id].running = False

    async def delete_cluster(self, cluster: Cluster) -> None:
        self._maybe_fail("delete_cluster", cluster.resource_id)
        self.servers.pop(cluster.resource_id, None)

    async def reboot_cluster(self, cluster: Cluster) -> None:
        self._maybe_fail("reboot_cluster", cluster.resource_id)
        server = self.servers[cluster.resource_id]
        server.reboots += 1
        server.parameters = dict(cluster.parameters)
        self._maybe_incompatible("reboot_cluster", cluster.resource_id)
        server.running = True

    async def upgrade_cluster(self, cluster: Cluster) -> None:
        self._maybe_fail("upgrade_cluster", cluster.resource_id)
        server = self.servers[cluster.resource_id]
        server.reboots += 1
        server.parameters = dict(cluster.parameters)
        server.running = True

    async def reboot_instance(self, cluster: Cluster, instance: Instance) -> None:
        self._maybe_fail("reboot_instance", instance.resource_id)

    async def rename_instance(self, cluster: Cluster, instance: Instance) -> None:
        self._maybe_fail("rename_instance", instance.resource_id)
        self.renamed.append((instance.resource_id, instance.identifier))

    async def reset_master_password(self, cluster: Cluster, password: str) -> None:
        self._maybe_fail("reset_master_password", cluster.resource_id)
        self.servers[cluster.resource_id].password = password

    async def set_master_password(self, cluster: Cluster, password: str) -> None:
        self._maybe_fail("set_master_password", cluster.resource_id)
        self.servers[cluster.resource_id].password = password

    async def check_master_login(self, cluster: Cluster, password: str) -> None:
        self._maybe_fail("check_master_login", cluster.resource_id)
        server = self.servers.get(cluster.resource_id)
        if server is None or not server.running or server.password != password:
            raise RuntimeFailure("password authentication failed")

    async def apply_parameters(self, cluster: Cluster, values: Mapping[str, str]) -> None:
        self._maybe_fail("apply_parameters", cluster.resource_id)
        server = self.servers[cluster.resource_id]
        server.applied.append(dict(values))
        server.parameters.update(values)

    async def open_endpoint(self, cluster: Cluster, instance: Instance) -> tuple[str, int]:
        if "open_endpoint" in self.gates:
            await self.gates["open_endpoint"].wait()
        self._maybe_fail("open_endpoint", instance.resource_id)
        assert self.servers[cluster.resource_id].running, "endpoint opened before the server runs"
        self._next_port += 1
        self.endpoints[instance.resource_id] = ("127.0.0.1", self._next_port)
        if instance.is_writer:
            self.writer[cluster.resource_id] = instance.resource_id
        return self.endpoints[instance.resource_id]

    async def close_endpoint(self, cluster: Cluster, instance: Instance) -> None:
        self._maybe_fail("close_endpoint", instance.resource_id)
        self.endpoints.pop(instance.resource_id, None)
        if self.writer.get(cluster.resource_id) == instance.resource_id:
            del self.writer[cluster.resource_id]

    async def delete_instance(self, cluster: Cluster, instance: Instance) -> None:
        self._maybe_fail("delete_instance", instance.resource_id)

    async def failover(self, cluster: Cluster, target: Instance, *, rejoin: bool = True) -> bool:
        self._maybe_fail("failover", target.resource_id)
        if target.resource_id in self.endpoints:
            self.writer[cluster.resource_id] = target.resource_id
        self.failovers.append((target.resource_id, rejoin))
        return rejoin

    def writer_of(self, cluster: Cluster) -> str | None:
        return None  # no opinion: the store's flags stand

    def cluster_endpoint(self, cluster: Cluster) -> tuple[str, int] | None:
        writer = self.writer.get(cluster.resource_id)
        return self.endpoints.get(writer) if writer else None

    def set_status_listener(self, fn: StatusListener) -> None:
        self.listener = fn

    def log_directory(self, cluster: Cluster, instance: Instance) -> Path | None:
        """``log_dirs[instance resource id]``, set by a test (a directory it fills itself)."""
        return self.log_dirs.get(instance.resource_id)


class FakeDirectory:
    def __init__(self) -> None:
        self.roles: set[str] = set()
        self.iam_roles: set[str] = set()  # ARNs of the IAM roles that exist
        self.untrusting: set[str] = set()  # ... whose trust policy does not let the service assume them
        self.assume_checks: list[tuple[str, str, dict[str, Any]]] = []

    def service_linked_role_exists(self, service_name: str) -> bool:
        return service_name in self.roles

    def create_service_linked_role(self, service_name: str) -> Any:
        self.roles.add(service_name)
        return service_name

    def service_may_assume(self, arn: str, service: str, context: dict[str, Any]) -> bool | None:
        self.assume_checks.append((arn, service, dict(context)))
        if arn not in self.iam_roles:
            return None
        return arn not in self.untrusting


class FakeAuthorizer:
    """Allows everything except the actions in ``deny``; records every check."""

    def __init__(self) -> None:
        self.deny: set[str] = set()
        self.checks: list[tuple[str, list[str], dict[str, Any]]] = []

    def authorize(self, ctx: RequestContext, action: str, resources: Sequence[str],
                  keys: Mapping[str, Any] | None = None) -> None:
        self.checks.append((action, list(resources), dict(keys or {})))
        if action in self.deny:
            raise AccessDenied(f"User: {ctx.principal.arn} is not authorized to perform: {action}")


def make_ctx(authorizer: FakeAuthorizer, operation: str = "Test", params: dict[str, Any] | None = None) -> RequestContext:
    principal = Principal(account=ACCOUNT, arn=f"arn:aws:iam::{ACCOUNT}:user/alice", kind="user",
                          user_id="AIDAEXAMPLE", name="alice")
    return RequestContext(
        request_id="req-1", service="rds", operation=operation, region=REGION, principal=principal,
        source_ip="127.0.0.1", user_agent="test", secure_transport=False,
        time=dt.datetime.now(dt.UTC), params=params or {}, authorizer=authorizer,
    )
