"""The engine: real PostgreSQL servers behind one small asyncio interface.

The control plane (``rds/``) and the gateway use only what this module exports: the :class:`Engine`
and :class:`Server` protocols, the status vocabulary and the errors. :class:`LocalEngine` runs PostgreSQL
processes on this machine; a later implementation (PostgreSQL on Kubernetes through an operator)
would implement the same protocols.

Modules: ``binaries`` (find installations, map EngineVersion → major), ``osuser`` (the unprivileged
OS users when running as root: one per cluster, ``auroral-pg`` for templates), ``fsafe`` (root's file
operations in directories those users can write), ``template`` (initdb once per major, clone per cluster),
``postmaster`` (subprocesses, readiness, shutdown), ``proc`` (postmaster.pid and /proc), ``conf``
(postgresql.conf includes and pg_hba.conf), ``bootstrap`` (+ ``sql/``: Aurora roles, master user,
SCRAM verifiers), ``extension`` (the ``auroral_rds`` server module, compiled at run time, for
``rds.restrict_password_commands``), ``cluster`` (:class:`PgServer`, put together from ``server_base``,
``server_conf``, ``lifecycle`` with supervision, ``replication``, ``backup`` and ``upgrade``), ``local``
(:class:`LocalEngine`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from auroral.engine.binaries import Installation, available, resolve
from auroral.engine.cluster import (
    ParameterChange,
    PgServer,
    Query,
    RestartPolicy,
    Standby,
    Status,
    StatusCallback,
    WalPosition,
    lsn_value,
)
from auroral.engine.errors import (
    EngineError,
    NoInstallationError,
    ParameterError,
    ServerExistsError,
    ServerNotFoundError,
    ServerStartError,
    ServerStateError,
)
from auroral.engine.local import LocalEngine, RecoveryReport


class Server(Protocol):
    """One PostgreSQL server (an Aurora cluster's writer)."""

    cluster_id: str
    socket_dir: Path  # the gateway connects to <socket_dir>/.s.PGSQL.<port>
    port: int

    def status(self) -> Status: ...
    @property
    def reason(self) -> str: ...
    @property
    def major(self) -> int: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def restart(self) -> None: ...
    async def run_admin_sql(
        self, query: Query, params: Sequence[Any] | Mapping[str, Any] | None = None, dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]: ...
    async def reset_master(self, username: str, password: str) -> None: ...
    def parameters(self) -> dict[str, str]: ...
    async def set_parameters(self, changes: Mapping[str, str | None]) -> ParameterChange: ...


class Engine(Protocol):
    async def create_server(
        self,
        cluster_id: str,
        engine_version: str,
        *,
        admin_password: str,
        master_username: str,
        master_password: str,
        database_name: str | None = None,
        parameters: Mapping[str, str] | None = None,
    ) -> Server: ...
    def get_server(self, cluster_id: str) -> Server: ...
    def list_servers(self) -> Sequence[Server]: ...
    async def delete_server(self, cluster_id: str) -> None: ...
    async def recover(self, known: Mapping[str, str], *, start: bool = True) -> RecoveryReport: ...
    async def close(self) -> None: ...


__all__ = [
    "Engine",
    "EngineError",
    "Installation",
    "LocalEngine",
    "NoInstallationError",
    "ParameterChange",
    "ParameterError",
    "PgServer",
    "RecoveryReport",
    "RestartPolicy",
    "Server",
    "ServerExistsError",
    "ServerNotFoundError",
    "ServerStartError",
    "ServerStateError",
    "Standby",
    "Status",
    "StatusCallback",
    "WalPosition",
    "available",
    "lsn_value",
    "resolve",
]
