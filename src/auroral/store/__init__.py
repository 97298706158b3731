"""Persistence. This package owns every line of SQL in auroral.

Resources are JSON documents keyed by ``(kind, account, key)``: each service keeps its own
typed dataclasses and converts them to and from plain dicts, so a second backend (PostgreSQL,
for several control-plane processes) only has to implement this one class. Audit events have
their own table with indexed columns for CloudTrail ``LookupEvents``.

Writes are committed before the call returns (WAL, ``synchronous=NORMAL``: a process crash
loses nothing that was committed), so a service can write state *before* acting on it.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind    TEXT NOT NULL,
    account TEXT NOT NULL,
    key     TEXT NOT NULL,
    doc     TEXT NOT NULL,
    PRIMARY KEY (kind, account, key)
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    event_time   REAL NOT NULL,
    event_name   TEXT NOT NULL,
    event_source TEXT NOT NULL,
    username     TEXT,
    access_key   TEXT,
    read_only    INTEGER NOT NULL,
    error_code   TEXT,
    resources    TEXT NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit_events (event_time);
CREATE TABLE IF NOT EXISTS audit_resources (
    seq           INTEGER NOT NULL,
    resource_type TEXT,
    resource_name TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_res_name ON audit_resources (resource_name);
"""


@dataclass(frozen=True)
class AuditRow:
    """One stored audit event: the indexed columns plus the whole CloudTrail event document."""

    event_id: str
    event_time: float
    event_name: str
    event_source: str
    username: str | None
    access_key: str | None
    read_only: bool
    error_code: str | None
    resources: Sequence[Mapping[str, str]]
    doc: Mapping[str, Any]


class _Core:
    """What every view of one store shares: the connection, its lock and the write generation."""

    def __init__(self, path: Path) -> None:
        self.lock = threading.RLock()
        # The database and its -wal/-shm files hold secrets (sealed, but also audit and IAM data): owner
        # only. SQLite gives -wal/-shm the database file's mode, so the file is created 0600 before
        # SQLite opens it; the umask covers any other file it creates, the chmods files of older versions.
        # (only a new file: closing any descriptor of an open database would drop the POSIX locks of
        # another connection to it in this process, e.g. `auroral up` reading the root credentials)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        path.chmod(0o600)
        previous = os.umask(0o077)
        try:
            self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
        finally:
            os.umask(previous)
        for suffix in ("-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{path}{suffix}", 0o600)
        self.depth = 0
        self.generation = 0
        self.tx_generation = 0


class Store:
    """A SQLite-backed document store, safe to call from several threads.

    ``in_region(region)`` gives a view of the same store for one region's resources: the regional
    services (RDS, EC2, KMS, Secrets Manager) of each region keep their documents apart, under
    ``<kind>@<region>``; the home region (the one the installation first served) keeps plain kinds, so
    a store written before regions were real reads unchanged. Transactions, meta and audit events are
    shared by all views.
    """

    def __init__(self, path: Path, *, _core: _Core | None = None, _suffix: str = "") -> None:
        self.path = path
        if _core is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            _core = _Core(path)
        self._core = _core
        self._suffix = _suffix

    def in_region(self, region: str, home: str) -> Store:
        """The view of ``region``'s resources (``home`` is the installation's home region)."""
        return Store(self.path, _core=self._core, _suffix="" if region == home else f"@{region}")

    def regions_in_use(self) -> set[str]:
        """The regions other than the home region that hold resources."""
        with self._core.lock:
            rows = self._core.db.execute("SELECT DISTINCT kind FROM resources WHERE kind LIKE '%@%'").fetchall()
        return {str(r[0]).rpartition("@")[2] for r in rows}

    @property
    def generation(self) -> int:
        """A number that changes with every write to the resources (put, delete, and the end of a
        transaction that made one, committed or not; audit events do not count): a cache of documents
        read at one generation is current while the number is the same. Read it *before* reading what
        is cached."""
        return self._core.generation

    def close(self) -> None:
        with self._core.lock:
            self._core.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes into one atomic commit (nests: only the outermost commits)."""
        with self._core.lock:
            if self._core.depth == 0:
                self._core.db.execute("BEGIN IMMEDIATE")
                self._core.tx_generation = self._core.generation
            self._core.depth += 1
            try:
                yield
            except BaseException:
                self._core.depth -= 1
                if self._core.depth == 0:
                    self._core.db.execute("ROLLBACK")
                    self._end_generation()
                raise
            self._core.depth -= 1
            if self._core.depth == 0:
                self._core.db.execute("COMMIT")
                self._end_generation()

    def _end_generation(self) -> None:
        """At the end of a transaction that wrote resources: what was read inside it (uncommitted, or
        rolled back since) is not current any more."""
        if self._core.generation != self._core.tx_generation:
            self._core.generation += 1

    # --- resources -------------------------------------------------------------------------

    def get(self, kind: str, account: str, key: str) -> dict[str, Any] | None:
        with self._core.lock:
            row = self._core.db.execute(
                "SELECT doc FROM resources WHERE kind=? AND account=? AND key=?", (kind + self._suffix, account, key)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put(self, kind: str, account: str, key: str, doc: Mapping[str, Any]) -> None:
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
        with self._core.lock:
            self._core.db.execute(
                "INSERT INTO resources (kind, account, key, doc) VALUES (?,?,?,?) "
                "ON CONFLICT (kind, account, key) DO UPDATE SET doc=excluded.doc",
                (kind + self._suffix, account, key, text),
            )
            self._core.generation += 1

    def delete(self, kind: str, account: str, key: str) -> bool:
        with self._core.lock:
            cur = self._core.db.execute(
                "DELETE FROM resources WHERE kind=? AND account=? AND key=?", (kind + self._suffix, account, key)
            )
            self._core.generation += 1
        return cur.rowcount > 0

    def list(self, kind: str, account: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        """All documents of a kind as ``(account, key, doc)``, ordered by account and key."""
        with self._core.lock:
            if account is None:
                rows = self._core.db.execute(
                    "SELECT account, key, doc FROM resources WHERE kind=? ORDER BY account, key", (kind + self._suffix,)
                ).fetchall()
            else:
                rows = self._core.db.execute(
                    "SELECT account, key, doc FROM resources WHERE kind=? AND account=? ORDER BY key",
                    (kind + self._suffix, account),
                ).fetchall()
        return [(a, k, dict(json.loads(d))) for a, k, d in rows]

    # --- meta (installation-wide values) ---------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._core.lock:
            row = self._core.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._core.lock:
            self._core.db.execute(
                "INSERT INTO meta (key, value) VALUES (?,?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    # --- audit -----------------------------------------------------------------------------

    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        """Write audit events in one transaction."""
        if not rows:
            return
        with self.transaction():
            for row in rows:
                cur = self._core.db.execute(
                    "INSERT INTO audit_events (event_id, event_time, event_name, event_source, username, "
                    "access_key, read_only, error_code, resources, doc) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        row.event_id,
                        row.event_time,
                        row.event_name,
                        row.event_source,
                        row.username,
                        row.access_key,
                        int(row.read_only),
                        row.error_code,
                        json.dumps(list(row.resources)),
                        json.dumps(row.doc, default=str),
                    ),
                )
                named = [(cur.lastrowid, r.get("ResourceType"), r["ResourceName"])
                         for r in row.resources if r.get("ResourceName")]
                if named:
                    self._core.db.executemany(
                        "INSERT INTO audit_resources (seq, resource_type, resource_name) VALUES (?,?,?)", named
                    )

    def count_audit(self, *, attribute: tuple[str, str] | None = None, before_seq: int | None = None) -> int:
        """How many events :meth:`query_audit` would find with these criteria and no limit."""
        where, args = self._audit_where(None, None, attribute, before_seq)
        sql = "SELECT COUNT(*) FROM audit_events e" + (" WHERE " + " AND ".join(where) if where else "")
        with self._core.lock:
            return int(self._core.db.execute(sql, args).fetchone()[0])

    @staticmethod
    def _audit_where(start: float | None, end: float | None, attribute: tuple[str, str] | None,
                     before_seq: int | None) -> tuple[builtins.list[str], builtins.list[Any]]:
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if start is not None:
            where.append("e.event_time >= ?")
            args.append(start)
        if end is not None:
            where.append("e.event_time <= ?")
            args.append(end)
        if before_seq is not None:
            where.append("e.seq < ?")
            args.append(before_seq)
        if attribute is not None:
            key, value = attribute
            column = {
                "EventId": "e.event_id",
                "EventName": "e.event_name",
                "EventSource": "e.event_source",
                "Username": "e.username",
                "AccessKeyId": "e.access_key",
                "ReadOnly": "e.read_only",
            }.get(key)
            if column == "e.read_only":
                where.append("e.read_only = ?")
                args.append(1 if value.lower() == "true" else 0)
            elif column is not None:
                where.append(f"{column} = ?")
                args.append(value)
            elif key == "ResourceName":
                where.append("e.seq IN (SELECT seq FROM audit_resources WHERE resource_name = ?)")
                args.append(value)
            elif key == "ResourceType":
                where.append("e.seq IN (SELECT seq FROM audit_resources WHERE resource_type = ?)")
                args.append(value)
            else:
                raise ValueError(f"unknown lookup attribute {key}")
        return where, args

    def query_audit(
        self,
        *,
        start: float | None = None,
        end: float | None = None,
        attribute: tuple[str, str] | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> builtins.list[tuple[int, AuditRow]]:
        """Events newest first. ``attribute`` is a CloudTrail LookupAttribute (key, value)."""
        where, args = self._audit_where(start, end, attribute, before_seq)
        sql = "SELECT e.seq, e.event_id, e.event_time, e.event_name, e.event_source, e.username, e.access_key, "
        sql += "e.read_only, e.error_code, e.resources, e.doc FROM audit_events e"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY e.seq DESC LIMIT ?"
        args.append(limit)
        with self._core.lock:
            rows = self._core.db.execute(sql, args).fetchall()
        return [
            (
                r[0],
                AuditRow(
                    event_id=r[1],
                    event_time=r[2],
                    event_name=r[3],
                    event_source=r[4],
                    username=r[5],
                    access_key=r[6],
                    read_only=bool(r[7]),
                    error_code=r[8],
                    resources=json.loads(r[9]),
                    doc=json.loads(r[10]),
                ),
            )
            for r in rows
        ]
