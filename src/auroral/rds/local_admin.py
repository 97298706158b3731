"""``rdsadmin`` and the master user in :class:`~auroral.rds.local_runtime.LocalRuntime`: the ``rdsadmin``
password (random, sealed in the store before the first server is created; a snapshot carries it to its
restores), connections as ``rdsadmin`` for the control plane, the master password, and the IAM database
authentication users every server trusts the gateway for.

Separate because it is where the runtime holds credentials: sealed at rest, never logged, and only the
SCRAM verifier of the master password travels to PostgreSQL.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from auroral.crypto import Sealer
from auroral.engine import EngineError, PgServer
from auroral.engine.bootstrap import scram_verifier
from auroral.engine.postmaster import connect
from auroral.rds.local_replicas import ReplicaSet, first_line
from auroral.rds.model import Cluster, Instance
from auroral.rds.runtime import RuntimeFailure

log = logging.getLogger(__name__)

KIND_ADMIN = "rds-admin-password"


class AdminAccess(ReplicaSet):
    """Credentials and administrative connections for ``LocalRuntime`` (a mixin: ``LocalRuntime.__init__``
    sets these)."""

    _sealer: Sealer

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

    def admin_password_of(self, cluster: Cluster) -> str:
        """rdsadmin's password in the cluster's data (a snapshot carries it, sealed, to its restores)."""
        return self._admin_password(cluster)

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
            raise RuntimeFailure(f"setting the master password failed: {first_line(exc)}") from exc

    async def check_master_login(self, cluster: Cluster, password: str) -> None:
        # The private socket authenticates with scram-sha-256 like the endpoint, without the
        # gateway's network rules or IAM authentication in the way: exactly "does this password log in".
        server = self._server(cluster)
        try:
            connection = await connect(server.socket_dir, password, "postgres", user=cluster.master_username)
            async with connection:
                await connection.execute("SELECT 1")
        except psycopg.Error as exc:
            raise RuntimeFailure(f"a login with the new master password failed: {first_line(exc)}") from exc
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
