"""What the advisor knows of the inside of each cluster's database: its roles and who owns the schemas
that are written, read by the control plane as ``rdsadmin`` over the writer's private socket.

Inside-database state changes with SQL, not with API calls, so the store's generation never sees it.
:class:`DatabaseReader` keeps the last state read per cluster (by resource id) and a ``version`` that
moves only when a read differs from the one before, which the advisor's own version includes: a
changed state is evaluated by the next refresh, an unchanged one costs nothing. When a read is asked
for (a session's end at the cluster's endpoints, every ``PERIOD_SECONDS``, before GetFindings answers)
is ``auroral.advisor.watch``'s business.

Reads are coalesced per cluster (one at a time; a caller that needs a read started after a moment
waits for one). The roles are read on one persistent connection to ``postgres``; each other database
(for its schemas and ``pg_stat_user_tables``) on a short connection, closed at once, so that no
control-plane session is left holding a database a user wants to drop.

Every connection first resets what the database's owner may have set as its session defaults (ALTER
DATABASE ... SET search_path, role, default transaction modes): the reads run as a superuser, and an
operator, function or aggregate of the owner's own, found first through its search_path, would otherwise
run with ``rdsadmin``'s privileges (``READ_SETUP``). The reads are bounded by ``statement_timeout`` and
``lock_timeout`` on the server too, not only by the client's wait; a database its owner holds locked
(a new connection would wait in its startup) is not visited while it is (``DATABASES_SQL``), and the
roles' memberships are computed in one pass over the grants (``memberships``), so an owner's objects cannot make every
read time out.

Never read: a password hash. The query answers ``rolpassword IS NOT NULL`` and ``rolpassword LIKE
'md5%'`` as booleans; the hash itself never leaves the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from auroral.engine.bootstrap import RESERVED_ROLES

log = logging.getLogger(__name__)

PERIOD_SECONDS = 10.0
READ_TIMEOUT = 5.0  # one cluster's read at most (then its connection is dropped)
ANSWER_WAIT = 2.0  # what GetFindings waits for the reads at most (a slow cluster keeps its last state)
MAX_DATABASES = 64  # per cluster, for the schema rule (the first ones by name)

# What a database's owner set for its sessions (ALTER DATABASE ... SET) applies to rdsadmin's there too:
# reset before any query (the names of the queries are pg_catalog's only, operators included).
READ_SETUP = (
    "SET ROLE NONE; SET search_path = pg_catalog; SET default_transaction_read_only = on; "
    # a SERIALIZABLE READ ONLY DEFERRABLE default would wait for the owner's open serializable transactions
    "SET default_transaction_isolation = 'read committed'; SET default_transaction_deferrable = off; "
    f"SET statement_timeout = '{int(READ_TIMEOUT * 1000)}ms'; SET lock_timeout = '1s'"
)

Connect = Callable[[str], Awaitable[psycopg.AsyncConnection[tuple[Any, ...]]]]


@dataclass(frozen=True)
class Target:
    """One cluster to read: its resource id, how to open an rdsadmin connection to one of its databases
    on the writer, and whether to read the databases' written tables too (only AURORAL.8 needs them,
    and only for a cluster where a role other than the master user logged in: else each read would
    open a connection per database for nothing)."""

    rid: str
    connect: Connect
    writes: bool

# Every role but PostgreSQL's predefined pg_* roles and superusers (rdsadmin: the engine's own). The
# password is answered as two booleans: never the hash. rds_iam membership is the gateway's test.
# The memberships (rds_superuser: MEMBER, any grant; rds_iam: USAGE, grants that inherit — PostgreSQL 16+:
# the grant's inherit option; before: the member's rolinherit — as pg_has_role decides them; rds_superuser
# members hold rds_iam WITH ADMIN OPTION, INHERIT FALSE, and are not IAM users) are computed here, in one
# pass over pg_auth_members's rows (``memberships``), not on the server: pg_has_role per role is quadratic
# in the length of a chain of grants, and so is a recursive query whose every step joins the whole
# catalog (a master user's few thousand roles granted one to the next took longer than a read may, and
# no inside finding moved again).
ROLES_SQL = (
    "SELECT a.oid, a.rolname, a.rolcanlogin, a.rolcreaterole, "
    "a.rolpassword IS NOT NULL, coalesce(a.rolpassword LIKE 'md5%', false) "
    "FROM pg_catalog.pg_authid a WHERE NOT a.rolsuper AND a.rolname !~ '^pg_' ORDER BY a.rolname"
)
_GRANTS_SQL = (
    "SELECT m.roleid, m.member, {inherits} FROM pg_catalog.pg_auth_members m "
    "JOIN pg_catalog.pg_authid r ON r.oid = m.member"
)
ANCHORS_SQL = "SELECT rolname, oid FROM pg_catalog.pg_authid WHERE rolname IN ('rds_superuser', 'rds_iam')"


def grants_sql(server_version: int) -> str:
    """The grants query for a server of ``server_version`` (``160004``: how a grant inherits differs)."""
    return _GRANTS_SQL.format(inherits="m.inherit_option" if server_version >= 160000 else "r.rolinherit")


def memberships(root: int | None, grants: Iterable[tuple[int, int, bool]], *,
                inheriting_only: bool) -> set[int]:
    """The roles that reach ``root`` through ``grants`` (``(role, member, inherits)`` rows), ``root``
    included; only through grants that inherit when ``inheriting_only``. Linear in the grants."""
    if root is None:
        return set()
    members: dict[int, list[int]] = {}
    for role, member, inherits in grants:
        if inherits or not inheriting_only:
            members.setdefault(role, []).append(member)
    seen = {root}
    todo = [root]
    while todo:
        for member in members.get(todo.pop(), ()):
            if member not in seen:
                seen.add(member)
                todo.append(member)
    return seen


# The databases to visit, and whether a lock on one would hold up a new connection to it: a backend's
# startup takes RowExclusiveLock on its database, which waits behind a stronger lock the database's owner
# holds (ALTER DATABASE ... RENAME in an open transaction). A client that gives up on such a connection
# leaves its backend waiting on the server (one more per read, up to max_connections): such a database is
# not visited while it is locked (its last known state is kept).
DATABASES_SQL = (
    "SELECT d.datname, EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.locktype = 'object' "
    "AND l.database OPERATOR(pg_catalog.=) 0::pg_catalog.oid "
    "AND l.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_database'::pg_catalog.regclass::pg_catalog.oid "
    "AND l.objid OPERATOR(pg_catalog.=) d.oid "
    "AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')) "
    "FROM pg_catalog.pg_database d WHERE d.datallowconn AND NOT d.datistemplate "
    f"ORDER BY d.datname LIMIT {MAX_DATABASES}"
)
# Per database: the written tables (rows inserted, updated or deleted since the statistics were last
# reset), by schema, the schema's owner (pg_database_owner, PostgreSQL 14+'s owner of ``public``,
# stands for the database's owner) and the table's owner.
WRITES_SQL = (
    "SELECT n.nspname, "
    "CASE WHEN pg_catalog.pg_get_userbyid(n.nspowner) = 'pg_database_owner' "
    "THEN pg_catalog.pg_get_userbyid(d.datdba) ELSE pg_catalog.pg_get_userbyid(n.nspowner) END, "
    "pg_catalog.pg_get_userbyid(c.relowner), count(*)::int "
    "FROM pg_catalog.pg_stat_user_tables s JOIN pg_catalog.pg_class c ON c.oid = s.relid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_database d ON d.datname = pg_catalog.current_database() "
    "WHERE s.n_tup_ins + s.n_tup_upd + s.n_tup_del > 0 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)


@dataclass(frozen=True)
class RoleInfo:
    name: str
    login: bool
    createrole: bool
    superuser_member: bool  # a member of rds_superuser, directly or through other roles
    iam_member: bool  # an IAM database user: rds_iam's privileges are its own (USAGE), as the gateway asks
    has_password: bool
    md5: bool  # the stored password is an MD5 hash (never the hash itself)

    @property
    def reserved(self) -> bool:
        """The engine's own roles (rdsadmin, rdsrepladmin, rds_superuser, rds_iam, ...)."""
        return self.name in RESERVED_ROLES


@dataclass(frozen=True)
class SchemaWrites:
    database: str
    schema: str
    schema_owner: str
    table_owner: str
    tables: int  # tables of that owner in that schema with rows written


@dataclass(frozen=True)
class DatabaseState:
    read_at: float
    roles: tuple[RoleInfo, ...] = ()
    writes: tuple[SchemaWrites, ...] = ()

    def content(self) -> tuple[Any, ...]:
        return (self.roles, self.writes)


@dataclass
class _Slot:
    started: float = 0.0
    task: asyncio.Task[None] | None = None
    conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None  # rdsadmin to "postgres", kept
    failing: bool = False  # the last read failed (logged once per run of failures)


@dataclass
class DatabaseReader:
    """The inside-database state of one region's clusters, by cluster resource id."""

    _states: dict[str, DatabaseState] = field(default_factory=dict)
    _slots: dict[str, _Slot] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the snapshot reads from a thread
    _background: set[asyncio.Future[None]] = field(default_factory=set)
    version: int = 0

    def states(self) -> dict[str, DatabaseState]:
        with self._lock:
            return dict(self._states)

    async def fresh(self, reads: Iterable[Target], *, since: float,
                    timeout: float = ANSWER_WAIT) -> None:
        """Make sure each cluster was read by a read that started at or after ``since`` (monotonic
        time); at most ``timeout`` seconds (a cluster that does not answer keeps its last state)."""
        jobs = [asyncio.ensure_future(self._read_after(target, since)) for target in reads]
        if jobs:
            _done, pending = await asyncio.wait(jobs, timeout=timeout)
            for job in pending:
                job.cancel()

    def request(self, target: Target) -> None:
        """Read soon (unless a read of the cluster is running: it may have started before the change
        that asked for this one, so another follows it)."""
        task = asyncio.ensure_future(self._read_after(target, time.monotonic()))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _read_after(self, target: Target, since: float) -> None:
        slot = self._slots.setdefault(target.rid, _Slot())
        while True:
            task = slot.task
            if task is None or (task.done() and slot.started < since):
                slot.started = time.monotonic()
                slot.task = task = asyncio.ensure_future(self._read(target, slot))
            started = slot.started
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
            if started >= since:
                return
            # that read started before ``since``: wait for (or start) one more

    async def _read(self, target: Target, slot: _Slot) -> None:
        rid = target.rid
        try:
            state = await asyncio.wait_for(self._query(slot, target), READ_TIMEOUT)
        except Exception as exc:  # psycopg's, the runtime's (no server), a timeout
            await self._drop_connection(slot)
            if not slot.failing:
                # the message is psycopg's or the runtime's: never a password (none is in the query)
                log.info("advisor: cannot read the database of cluster %s: %s", rid, type(exc).__name__)
            slot.failing = True
            return
        slot.failing = False
        with self._lock:
            old = self._states.get(rid)
            self._states[rid] = state
            if old is None or old.content() != state.content():
                self.version += 1

    async def _query(self, slot: _Slot, target: Target) -> DatabaseState:
        for attempt in (1, 2):
            if slot.conn is None or slot.conn.closed:
                slot.conn = await _open(target.connect, "postgres")
            try:
                roles = await (await slot.conn.execute(ROLES_SQL)).fetchall()
                grants = [(int(r[0]), int(r[1]), bool(r[2])) for r in await (await slot.conn.execute(
                    grants_sql(slot.conn.info.server_version))).fetchall()]
                anchors = {str(r[0]): int(r[1]) for r in await (await slot.conn.execute(ANCHORS_SQL)).fetchall()}
                listed = await (await slot.conn.execute(DATABASES_SQL)).fetchall()
                databases = [(str(r[0]), bool(r[1])) for r in listed]
                break
            except (psycopg.OperationalError, psycopg.InterfaceError):
                await self._drop_connection(slot)  # a restarted server: once more on a new connection
                if attempt == 2:
                    raise
        writes: list[SchemaWrites] = []
        with self._lock:
            before = self._states.get(target.rid)
        for db, locked in databases if target.writes else []:
            if locked:  # a new connection would wait (and leave its backend waiting): what was known stays
                writes.extend(w for w in (before.writes if before else ()) if w.database == db)
                continue
            try:
                writes.extend(await self._writes(db, slot.conn if db == "postgres" else None, target.connect))
            except psycopg.OperationalError:  # this database only (dropped, not accepting connections)
                writes.extend(w for w in (before.writes if before else ()) if w.database == db)
        su = memberships(anchors.get("rds_superuser"), grants, inheriting_only=False)
        iam = memberships(anchors.get("rds_iam"), grants, inheriting_only=True)
        return DatabaseState(
            read_at=time.time(),
            roles=tuple(RoleInfo(str(r[1]), bool(r[2]), bool(r[3]), int(r[0]) in su, int(r[0]) in iam,
                                 bool(r[4]), bool(r[5])) for r in roles),
            writes=tuple(writes))

    @staticmethod
    async def _writes(db: str, conn: psycopg.AsyncConnection[tuple[Any, ...]] | None,
                      connect: Connect) -> list[SchemaWrites]:
        own = conn is None
        try:  # an OperationalError is the caller's: it keeps what it knew of this database
            if conn is None:
                conn = await _open(connect, db)
            rows = await (await conn.execute(WRITES_SQL)).fetchall()
        finally:
            if own and conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        return [SchemaWrites(db, str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    @staticmethod
    async def _drop_connection(slot: _Slot) -> None:
        conn, slot.conn = slot.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    def drop(self, present: set[str]) -> None:
        """Clusters that are gone: their state goes, their connection is closed (soon: from the loop)."""
        with self._lock:
            for rid in [r for r in self._states if r not in present]:
                del self._states[rid]
                self.version += 1
        for rid in [r for r in self._slots if r not in present]:
            slot = self._slots.pop(rid)
            if slot.task is not None:
                slot.task.cancel()
            task = asyncio.ensure_future(self._drop_connection(slot))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        for slot in self._slots.values():
            if slot.task is not None:
                slot.task.cancel()
            await self._drop_connection(slot)


async def _open(connect: Connect, dbname: str) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    """An rdsadmin connection to ``dbname`` with the owner's session defaults reset (``READ_SETUP``)."""
    conn = await connect(dbname)
    try:
        await conn.execute(READ_SETUP.encode())
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.close()
        raise
    return conn
