"""IAM database authentication at the endpoints (AWS-BEHAVIOUR.md, "IAM database authentication").

For every startup on a cluster whose ``EnableIAMDatabaseAuthentication`` is on (read at connection
time, so a Modify applies to the next connection), the gateway's ``authenticate`` hook asks the cluster,
over one persistent ``rdsadmin`` connection per cluster, whether the user holds ``rds_iam``
(``pg_has_role(user, 'rds_iam', 'USAGE')``; names are case-sensitive; an unknown user is not an IAM
user and PostgreSQL refuses it as usual). For a member the hook hands the gateway an
:class:`~auroral.gateway.AuthPlan`: the gateway asks the client for its password (the token, over TLS
only) and calls :meth:`IamDbAuth._verify`, which checks the token as botocore's
``generate_db_auth_token`` makes it (SigV4 presigned ``host:port/?Action=connect&DBUser=<user>``, signed
for one of this endpoint's names and its port: the instance's DNS name, the reader endpoint's, the
cluster endpoint's when the instance is the writer, or the address it listens on, 15 minutes, an active key or valid
temporary credentials) and authorizes ``rds-db:connect`` on
``arn:aws:rds-db:<region>:<account>:dbuser:<DbClusterResourceId>/<user>`` for the signer (identity
policies, permissions boundary, session policies; ``aws:SourceIp`` is the client's address).

The upstream login needs no password: the engine lists the user in ``auroral.iam_users`` (exact names,
each one quoted token; see ``engine.conf`` for why a file and not ``+rds_iam``), for which PostgreSQL
trusts the gateway's OS user (``peer``). A member whose name cannot be such a token (a line break, a
leading ``/``) is refused, as are the engine's own roles (``rdsadmin``: a superuser, hence a member of ``rds_iam``). A user is listed on its first verified
login and stays listed while it is an IAM user; it is unlisted (and the reload awaited) before a
password login of a user that no longer is one, all users are unlisted when IAM authentication is
found off, and the gateway refuses any AuthenticationOk it did not verify (``unearned_trust`` unlists).

Every attempt leaves an audit event (eventSource ``rds-db.amazonaws.com``, eventName ``connect``) with
the signer, the user, the cluster, the source address and, on failure, why. A successful login's event
ID goes to the gateway (``AuthPlan.audit_event``), whose flow records of the connection carry it: the
security advisor's evidence of who logged in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg

from auroral.api.context import Principal
from auroral.api.sigv4 import PresignedVerifier, SigningKeyInfo
from auroral.audit import AuditTrail
from auroral.engine.bootstrap import RESERVED_ROLES
from auroral.engine.conf import hba_name_ok
from auroral.errors import AwsError
from auroral.gateway import AuthPlan, StartupInfo
from auroral.gateway.decision import Authenticate, UnearnedTrust
from auroral.iam.authorizer import IamAuthorizer
from auroral.iam.directory import Directory
from auroral.iam.policy import access_denied_message
from auroral.rds.cluster_endpoints import KIND_CLUSTER_ENDPOINT
from auroral.rds.endpoints import (
    account_region_id,
    cluster_endpoint_name,
    custom_endpoint_name,
    instance_endpoint_name,
    reader_endpoint_name,
)
from auroral.rds.model import KIND_CLUSTER, KIND_INSTANCE, Cluster, Instance
from auroral.rds.runtime import RuntimeFailure
from auroral.regions import partition_of
from auroral.store import Store

log = logging.getLogger(__name__)

ACTION = "rds-db:connect"
TOKEN_LIFETIME = timedelta(minutes=15)
MAX_TOKEN = 8192
# the addresses "localhost" resolves to (an endpoint there is told apart by its port alone)
_LOCALHOST_ADDRESSES = frozenset({"127.0.0.1", "::1"})
_IS_IAM = "SELECT pg_has_role(oid, 'rds_iam', 'USAGE') FROM pg_roles WHERE rolname = %s"



def looks_like_token(token: str) -> bool:
    """Whether ``token`` has the shape of an authentication token (``<host>:<port>/?Action=connect&...``
    with a SigV4 query signature). Anything else is treated as a password sent by mistake, of which no
    part may reach a log, the audit trail or an error message."""
    head, sep, query = token.partition("/?")
    return bool(sep) and ":" in head and "X-Amz-Signature=" in query and "X-Amz-Credential=" in query

class Runtime(Protocol):
    """What this module needs from :class:`~auroral.rds.local_runtime.LocalRuntime`."""

    def iam_users(self, cluster: Cluster) -> set[str]: ...
    async def set_iam_users(self, cluster: Cluster, names: Iterable[str], *, wait_user: str | None = None,
                            listed: bool = True) -> None: ...
    async def admin_connection(self, cluster: Cluster, instance: Instance | None = None,
                               ) -> psycopg.AsyncConnection[tuple[Any, ...]]: ...
    def endpoint_address(self, instance: Instance) -> tuple[str, int] | None: ...
    def cluster_endpoint(self, cluster: Cluster) -> tuple[str, int] | None: ...


def dbuser_arn(cluster: Cluster, user: str) -> str:
    return f"arn:{partition_of(cluster.region)}:rds-db:{cluster.region}:{cluster.account}:dbuser:{cluster.resource_id}/{user}"


class AdminConnection:
    """One persistent ``rdsadmin`` connection (psycopg serializes concurrent queries on it); reopened
    once per query after a failure (a restarted server)."""

    def __init__(self, connect: Callable[[], Awaitable[psycopg.AsyncConnection[tuple[Any, ...]]]]) -> None:
        self._connect = connect
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await self._connect()
            return self._conn

    async def query(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        for attempt in (1, 2):
            conn = await self._connection()
            try:
                cursor = await conn.execute(statement, params)
                return await cursor.fetchall()
            except (psycopg.OperationalError, psycopg.InterfaceError):
                await self.close(conn)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def close(self, conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None) -> None:
        conn = conn or self._conn
        if conn is not None:
            if conn is self._conn:
                self._conn = None
            with contextlib.suppress(Exception):
                await conn.close()


@dataclass
class _ClusterState:
    # per instance: the membership check asks the server the connection goes to (a reader's own, which
    # has the same roles), so that a login to a reader does not depend on the writer, during a failover
    # least of all
    admins: dict[str, AdminConnection] = field(default_factory=dict)
    listed: set[str] | None = None  # loaded from the engine on first use
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Attempt:
    cluster: Cluster
    instance: Instance
    user: str
    peer_ip: str
    principal: Principal | None = None
    access_key: str | None = None
    event_id: str | None = None  # the audit event of the last verification


class IamDbAuth:
    def __init__(self, runtime: Runtime, store: Store, directory: Directory, authorizer: IamAuthorizer,
                 audit: AuditTrail, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._runtime = runtime
        self._store = store
        self._directory = directory
        self._authorizer = authorizer
        self._audit = audit
        self._clock = clock
        self._states: dict[str, _ClusterState] = {}
        self._idents: dict[str, tuple[str, str]] = {}  # resource id -> (account, identifier)
        self._clusters: dict[str, tuple[int, Cluster]] = {}  # resource id -> (store generation, cluster)
        self._instances: dict[str, tuple[int, Instance]] = {}  # the same for instances
        self._tokens = PresignedVerifier()  # a token serves many logins: its signature is computed once

    # --- the hooks -------------------------------------------------------------------------

    def hook_for(self, cluster: Cluster, instance: Instance) -> Authenticate:
        rid = cluster.resource_id
        self._idents[rid] = (cluster.account, cluster.identifier)

        async def authenticate(startup: StartupInfo, tls: bool, peer_ip: str) -> AuthPlan | None:
            current = self._current(rid) or cluster
            return await self._plan(current, instance, startup, tls, peer_ip)

        return authenticate

    def unearned_trust_for(self, cluster: Cluster, instance: Instance) -> UnearnedTrust:
        async def unearned(startup: StartupInfo, peer_ip: str) -> None:
            current = self._current(cluster.resource_id) or cluster
            log.warning("cluster %s: unlisting %r after an unverified upstream login from %s",
                        current.identifier, startup.user, peer_ip)
            await self._set_listed(current, startup.user, False)

        return unearned

    async def close(self) -> None:
        for state in self._states.values():
            for admin in state.admins.values():
                await admin.close()
        self._states.clear()

    # --- per connection --------------------------------------------------------------------

    async def _plan(self, cluster: Cluster, instance: Instance, startup: StartupInfo, tls: bool,
                    peer_ip: str) -> AuthPlan | None:
        user = startup.user
        state = self._state(cluster)
        if not cluster.iam_auth:
            if self._listed(cluster, state):
                await self._unlist_all(cluster, state, user)
            return None
        attempt = _Attempt(cluster, instance, user, peer_ip)
        if user in RESERVED_ROLES:  # superusers are members of everything; the gateway refuses these first
            return self._failing(attempt, "the user is reserved for the database engine")
        try:
            rows = await self._admin(state, cluster, instance).query(_IS_IAM, (user,))
        except (psycopg.OperationalError, RuntimeFailure, OSError) as exc:
            # the instance's server does not take connections now (a failover, a restart): neither would
            # the login, whoever the user is; the client sees what PostgreSQL says then, and retries
            log.warning("cluster %s: cannot check rds_iam membership of %r: %s", cluster.identifier, user, exc)
            return AuthPlan(kind="unavailable", verify=_refuse)
        except psycopg.Error as exc:
            log.warning("cluster %s: cannot check rds_iam membership of %r: %s", cluster.identifier, user, exc)
            return self._failing(attempt, "the database could not be asked whether the user is in rds_iam")
        if not (rows and rows[0][0]):
            if user in self._listed(cluster, state):
                await self._set_listed(cluster, user, False)
            return None
        if not hba_name_ok(user):
            return self._failing(attempt, "the user name cannot be used with IAM authentication "
                                          "(a line break, a leading '/', or longer than 63 bytes)")
        replication = startup.params.get("replication", "").lower()
        if replication not in ("", "false", "off", "no", "0"):
            return self._failing(attempt, "IAM authentication is not available for replication connections")
        if not tls:
            self._record(attempt, "IAM authentication requires an SSL connection")
            return AuthPlan(kind="iam", verify=_refuse)  # the gateway refuses plaintext before verifying

        async def verify(token: str) -> bool:
            return await self._verify(attempt, token)

        def audit_event() -> str | None:
            return attempt.event_id

        return AuthPlan(kind="iam", verify=verify, audit_event=audit_event)

    def _failing(self, attempt: _Attempt, reason: str) -> AuthPlan:
        async def verify(token: str) -> bool:
            self._record(attempt, reason)
            return False

        return AuthPlan(kind="iam", verify=verify)

    async def _verify(self, attempt: _Attempt, token: str) -> bool:
        reason = self._check_token(attempt, token)
        if reason is None:
            try:
                await self._set_listed(attempt.cluster, attempt.user, True)
            except Exception as exc:
                log.exception("cluster %s: cannot list %r for IAM login", attempt.cluster.identifier, attempt.user)
                reason = f"the database could not be prepared for the login: {exc}"
        self._record(attempt, reason)
        return reason is None

    def _check_token(self, attempt: _Attempt, token: str) -> str | None:
        """None when the token is good and its signer may connect; else why not."""
        cluster, user = attempt.cluster, attempt.user
        address = self._runtime.endpoint_address(attempt.instance)
        if address is None:
            return "the endpoint is not open"
        host, port = address
        if not token or len(token) > MAX_TOKEN or not looks_like_token(token):
            # nothing of it is quoted in the reason (logged, audited): it may be a password typed by mistake
            return "the password is not an IAM authentication token"
        signed_host = token.partition("/")[0].partition("://")[2] or token.partition("/")[0]
        if signed_host not in {f"{n}:{port}" for n in self._host_names(cluster, attempt.instance, address)}:
            return f"the token was generated for {signed_host!r}, not for this endpoint ({host}:{port})"
        now = self._clock()

        def lookup(akid: str) -> SigningKeyInfo | None:
            attempt.access_key = akid
            found = self._directory.lookup_credentials(akid)
            if found is None:
                return None
            attempt.principal = found[1]
            return found[0]

        try:
            verified, params = self._tokens.verify(token, "GET", signed_host, lookup, now)
        except AwsError as exc:
            return f"the token is not valid: {exc.code}: {exc.message}"
        except (ValueError, IndexError, UnicodeError) as exc:
            return f"the token is malformed: {exc}"
        principal = attempt.principal
        assert principal is not None
        if params.get("Action") != "connect":
            return f"the token's Action is {params.get('Action')!r}, not 'connect'"
        if params.get("DBUser") != user:
            return f"the token is for database user {params.get('DBUser')!r}, not {user!r}"
        if now > verified.signed_at + TOKEN_LIFETIME:
            return "the token has expired (tokens are valid for 15 minutes)"
        if verified.region != cluster.region:
            return f"the token is signed for region {verified.region!r}, not {cluster.region!r}"
        if principal.account != cluster.account:
            return f"the signer belongs to account {principal.account}, not {cluster.account}"
        resource = dbuser_arn(cluster, user)
        result = self._authorizer.authorize_principal(
            principal, ACTION, resource, source_ip=attempt.peer_ip, secure=True, region=cluster.region, now=now)
        try:
            self._directory.note_key_used(verified.access_key_id, "rds-db", verified.region, now)
        except Exception:
            log.debug("cannot note key use", exc_info=True)
        if not result.allowed:
            return access_denied_message(principal.arn, ACTION, resource, result)
        return None

    def _host_names(self, cluster: Cluster, instance: Instance, address: tuple[str, int]) -> set[str]:
        """The host names a token for this endpoint may be signed for: the instance's DNS name, the
        reader endpoint's, the cluster's custom endpoints' (a driver signs for the name it connects to:
        like the reader endpoint's, they are the cluster's own names, whichever of its instances they
        lead to now), the cluster endpoint's while the instance is the writer, and the address
        (plus the bare identifiers, as before the names, and ``localhost`` when the endpoint listens on
        the loopback address ``localhost`` stands for, where every endpoint has a port of its own).

        ``localhost`` is never a name of an endpoint on an address of its own: there every endpoint
        listens on the same port, so a token signed for ``localhost:5432`` would be good at every
        cluster of the account, and one handed to one cluster could be replayed at another (AWS
        scopes a token to the endpoint's host and port)."""
        current = self._current_instance(cluster.account, instance.resource_id) or instance
        ident = account_region_id(self._store, cluster.account, cluster.region)
        names = {address[0], current.identifier, cluster.identifier,
                 instance_endpoint_name(current.identifier, ident, cluster.region),
                 reader_endpoint_name(cluster.identifier, ident, cluster.region)}
        for _, _, doc in self._store.list(KIND_CLUSTER_ENDPOINT, cluster.account):
            if doc.get("cluster_resource_id") == cluster.resource_id and doc.get("status") != "deleting":
                names.add(custom_endpoint_name(str(doc["identifier"]), ident, cluster.region))
        if address[0] in _LOCALHOST_ADDRESSES:
            names.add("localhost")
        if self._runtime.cluster_endpoint(cluster) == address:
            names.add(cluster_endpoint_name(cluster.identifier, ident, cluster.region))
        return names

    def _current_instance(self, account: str, rid: str) -> Instance | None:
        """The instance as stored now (it may have been renamed since its endpoint opened)."""
        generation = self._store.generation
        cached = self._instances.get(rid)
        if cached is not None and cached[0] == generation:
            return cached[1]
        for _, _, doc in self._store.list(KIND_INSTANCE, account):
            if doc.get("resource_id") == rid:
                found = Instance.from_doc(doc)
                self._instances[rid] = (generation, found)
                return found
        return None

    def _record(self, attempt: _Attempt, reason: str | None) -> None:
        cluster = attempt.cluster
        attempt.event_id = self._audit.record(
            request_id=str(uuid.uuid4()), service="rds-db", operation="connect",
            principal=attempt.principal, access_key=attempt.access_key, source_ip=attempt.peer_ip,
            user_agent="PostgreSQL", read_only=False,
            params={"dbUser": attempt.user, "dbClusterIdentifier": cluster.identifier,
                    "dbInstanceIdentifier": attempt.instance.identifier,
                    "dbClusterResourceId": cluster.resource_id},
            resources=[{"ResourceType": "AWS::RDS::DBCluster", "ResourceName": cluster.arn()},
                       {"ResourceType": "AWS::RDS::DBUser", "ResourceName": dbuser_arn(cluster, attempt.user)}],
            error_code=None if reason is None else "AccessDenied", error_message=reason,
            response_elements={"result": "success" if reason is None else "failure"},
        )
        if reason is not None:
            log.info("IAM database login of %r on %s from %s refused: %s", attempt.user, cluster.identifier,
                     attempt.peer_ip, reason)

    # --- cluster state ---------------------------------------------------------------------

    def _current(self, rid: str) -> Cluster | None:
        """The cluster as stored now (a Modify applies to the next connection): read again only after
        the store was written."""
        generation = self._store.generation
        cached = self._clusters.get(rid)
        if cached is not None and cached[0] == generation:
            return cached[1]
        account, ident = self._idents.get(rid, ("", ""))
        doc = self._store.get(KIND_CLUSTER, account, ident) if ident else None
        if doc is None or doc.get("resource_id") != rid:
            for _, _, d in self._store.list(KIND_CLUSTER, account or None):
                if d.get("resource_id") == rid:
                    doc = d
                    break
            else:
                return None
        cluster = Cluster.from_doc(doc)
        self._idents[rid] = (cluster.account, cluster.identifier)
        self._clusters[rid] = (generation, cluster)
        return cluster

    def _state(self, cluster: Cluster) -> _ClusterState:
        state = self._states.get(cluster.resource_id)
        if state is None:
            state = _ClusterState()
            self._states[cluster.resource_id] = state
        return state

    def _admin(self, state: _ClusterState, cluster: Cluster, instance: Instance) -> AdminConnection:
        admin = state.admins.get(instance.resource_id)
        if admin is None:
            admin = AdminConnection(lambda: self._runtime.admin_connection(cluster, instance))
            state.admins[instance.resource_id] = admin
        return admin

    def _listed(self, cluster: Cluster, state: _ClusterState) -> set[str]:
        if state.listed is None:
            state.listed = self._runtime.iam_users(cluster)
        return state.listed

    async def _set_listed(self, cluster: Cluster, user: str, listed: bool) -> None:
        state = self._state(cluster)
        async with state.lock:
            names = self._listed(cluster, state)
            if (user in names) == listed:
                return
            new = names | {user} if listed else names - {user}
            await self._runtime.set_iam_users(cluster, new, wait_user=user, listed=listed)
            state.listed = new

    async def _unlist_all(self, cluster: Cluster, state: _ClusterState, user: str) -> None:
        async with state.lock:
            names = self._listed(cluster, state)
            if not names:
                return
            await self._runtime.set_iam_users(
                cluster, (), wait_user=user if user in names else None, listed=False)
            state.listed = set()


async def _refuse(token: str) -> bool:
    return False
