"""Aurora's SQL surface: ``version()`` and ``aurora_version()`` for the cluster's EngineVersion,
``aurora_db_instance_identifier()``,
``aurora_replica_status()`` and the ``rds.extensions`` setting, as clients and the AWS Advanced
wrappers (their Aurora PostgreSQL dialect detection and topology queries) see them on Aurora.

The functions (``sql/aurora.sql``) live in ``pg_catalog`` of every database, owned by ``rdsadmin``, and
read settings the engine writes into ``auroral.local.conf`` (:func:`settings`). The ``auroral_rds``
module defines those settings as ``sighup`` ones (only the configuration file sets them: no ``SET``,
no ``ALTER ROLE/DATABASE ... SET``); without the module they are plain placeholders a session could
shadow for itself, and ``rds.extensions`` is not in ``pg_settings``.

A server is one instance. Today's clusters have one, the writer: ``Topology.members`` holds its row. A
reader feature only has to add :class:`Member` rows (with their session UUID and lag) to each server's
topology.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Protocol

import psycopg

log = logging.getLogger(__name__)

WRITER_SESSION_ID = "MASTER_SESSION_ID"
VERSION_SETTING = "auroral.aurora_version"
IDENTIFIER_SETTING = "auroral.instance_identifier"
REPLICAS_SETTING = "auroral.replicas"
EXTENSIONS_SETTING = "rds.extensions"
# Aurora's own extension, which the AWS Advanced wrappers look for in rds.extensions to recognise
# Aurora PostgreSQL (auroral does not ship it: CREATE EXTENSION aurora_stat_utils fails).
AURORA_EXTENSIONS = ("aurora_stat_utils",)
_VERSION = re.compile(r"(\d{1,4})(?:\.(\d{1,4}))?(?:\.(\d{1,4}))?")
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Connect(Protocol):
    """Opens an ``rdsadmin`` connection to a database of the server."""

    async def __call__(self, dbname: str) -> psycopg.AsyncConnection[tuple[object, ...]]: ...


@dataclass(frozen=True)
class Member:
    """One row of ``aurora_replica_status()``."""

    server_id: str
    session_id: str = WRITER_SESSION_ID
    replica_lag_in_msec: float | None = None

    def entry(self) -> str:
        for token in (self.server_id, self.session_id):
            if not _TOKEN.fullmatch(token):
                raise ValueError(f"not an instance identifier or session id: {token!r}")
        lag = "" if self.replica_lag_in_msec is None else f" {float(self.replica_lag_in_msec):g}"
        return f"{self.server_id} {self.session_id}{lag}"


@dataclass(frozen=True)
class Topology:
    """What a server says about itself and its cluster."""

    engine_version: str = ""  # the cluster's EngineVersion ("16.4")
    instance_identifier: str = ""  # the instance this server is ("" while the cluster has none)
    members: tuple[Member, ...] = field(default_factory=tuple)


def aurora_version(engine_version: str) -> str:
    """``aurora_version()`` for an EngineVersion: major.minor.patch. Since 13.3 Aurora's version numbers
    follow PostgreSQL's ("13.3" answers ``13.3.0`` or ``13.3.1`` after a patch); EngineVersion does not
    carry the patch, so a two-part version gets ``.0``."""
    match = _VERSION.match(engine_version.strip())
    if match is None:
        return ""
    major, minor, patch = match.groups()
    return f"{major}.{minor or 0}.{patch or 0}"


def extension_names(sharedir: Path) -> list[str]:
    """The extensions an installation can create (its ``*.control`` files)."""
    try:
        found = {p.name[: -len(".control")] for p in (sharedir / "extension").glob("*.control")}
    except OSError:
        found = set()
    return sorted(found)


def settings(topology: Topology, extensions: Iterable[str]) -> dict[str, str]:
    """The configuration settings the functions read."""
    names = sorted({*extensions, *AURORA_EXTENSIONS})
    return {
        EXTENSIONS_SETTING: ",".join(names),
        VERSION_SETTING: aurora_version(topology.engine_version),
        IDENTIFIER_SETTING: topology.instance_identifier,
        REPLICAS_SETTING: ";".join(member.entry() for member in topology.members),
    }


def install_sql() -> str:
    """``aurora.sql``, then ``version.sql`` (``version()`` as on Aurora for the cluster's EngineVersion)."""
    files = resources.files("auroral.engine") / "sql"
    return "\n".join((files / name).read_text(encoding="utf-8") for name in ("aurora.sql", "version.sql"))


# The session the functions are (re)created in: a database owner may have set anything on their
# database (ALTER DATABASE ... SET search_path, role, default_transaction_read_only), which would otherwise
# apply to rdsadmin's session there too.
SESSION_SETUP = (
    "SET ROLE NONE; SET search_path = pg_catalog; SET default_transaction_read_only = off; SET lock_timeout = '5s'; "
    "SET statement_timeout = '30s'; SET check_function_bodies = on"
)


async def install(connect: Connect) -> None:
    """Create (or replace) the functions in every database that accepts connections. A database that
    fails is logged and skipped: the server runs on without the functions there."""
    try:
        async with await connect("postgres") as connection:
            cursor = await connection.execute(
                "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn ORDER BY datname")
            names = [str(row[0]) for row in await cursor.fetchall()]
    except psycopg.Error as exc:
        log.warning("the Aurora functions could not be installed: %s", _first_line(exc))
        return
    text = install_sql()
    for name in names:
        try:
            async with await connect(name) as connection:
                await connection.execute(SESSION_SETUP.encode())
                async with connection.transaction():
                    await connection.execute(text.encode())
        except psycopg.Error as exc:
            log.warning("database %r: the Aurora functions could not be installed: %s", name, _first_line(exc))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


