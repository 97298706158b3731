"""Flow records in the shape of VPC Flow Logs version 2, plus why the verdict was what it was.

Each connection produces two records sharing a ``connection-id``: one at accept (``phase`` "open", no
traffic yet: packets and bytes 0, start = end = the accept time) so a REJECT is visible at once, and one
when the connection ends (``phase`` "close") with start/end and the totals. ``bytes``/``packets``
count the client → endpoint direction (the record's srcaddr → dstaddr); ``bytes-out``/``packets-out``
the reply direction. "Packets" are receive/send calls, an approximation of TCP segments.
``dstport`` is the endpoint's virtual port (what AWS would show), ``srcaddr`` the real peer address.
The close record of a connection that sent a startup packet also says who logged in (``db-user``,
``application-name``, ``tls``, ``relayed``) and, for an IAM database login, the ID of the audit event its
token's verification left (``audit-event-id``, the ``rds-db`` ``connect`` event; absent otherwise).
A refused client whose SYN the listener's kernel filter dropped (:mod:`auroral.gateway.synfilter`) never
had a connection: it gets one REJECT record, phase "open", with that SYN as its one packet (``bytes``
its IP length; retransmissions of the SYN are not counted again).

:class:`FlowLog` keeps the last ``capacity`` records in memory and appends each as a JSON line to a file;
when the file passes ``max_file_bytes`` it is moved to ``<name>.1`` (one generation kept).

The logins of the connections still open (``FlowLog.login``, ``FlowLog.live``) are in memory only: who
logged in is known when the login reaches the relay, but the file keeps its two records per
connection (the open one written before the startup packet is read; the close one, which carries the
login). A reader of logins (the security advisor) takes the close records and the live logins
together (``FlowLog.view``): a login counts from the moment it happens, not from its connection's end.
Nothing is lost to a restart: the live logins end with the process, and their connections' close
records are written then.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

NAME_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1


def startup_name(value: str | None) -> str | None:
    """A startup packet's user name or application_name as PostgreSQL keeps it: its first 63 bytes (a client
    may send nearly 10000, before any password; the log keeps 10000 records in memory, and the security
    advisor reloads the file's logins at start). A character cut in two is dropped."""
    if value is None or len(value) <= NAME_BYTES // 4:
        return value
    return value.encode(errors="replace")[:NAME_BYTES].decode(errors="ignore")


@dataclass(frozen=True)
class FlowRecord:
    account_id: str
    interface_id: str
    srcaddr: str
    dstaddr: str
    srcport: int
    dstport: int
    start: int
    end: int
    action: Literal["ACCEPT", "REJECT"]
    reason: str
    endpoint_id: str
    connection_id: int
    phase: Literal["open", "close"]
    packets: int = 0
    bytes: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    version: int = 2
    protocol: int = 6
    log_status: str = "OK"
    # What the startup packet said, on the close record of a connection that sent one: the database
    # user, its application_name, whether the client spoke TLS, and whether the login reached the relay
    # (the server's authentication exchange followed; the gateway does not see whether the password
    # was right). The security advisor reads them (AURORAL.1, AURORAL.2). A live login
    # (``FlowLog.live``) is an open record that carries them: never written to the file.
    db_user: str | None = None
    application_name: str | None = None
    tls: bool | None = None
    relayed: bool = False
    # the audit event an IAM database login's token verification left (rds-db connect); None for a
    # password login (the gateway does not see the password: the server checks it)
    audit_event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version, "account-id": self.account_id, "interface-id": self.interface_id,
            "srcaddr": self.srcaddr, "dstaddr": self.dstaddr, "srcport": self.srcport, "dstport": self.dstport,
            "protocol": self.protocol, "packets": self.packets, "bytes": self.bytes, "start": self.start,
            "end": self.end, "action": self.action, "log-status": self.log_status, "reason": self.reason,
            "endpoint-id": self.endpoint_id, "connection-id": self.connection_id, "phase": self.phase,
            "packets-out": self.packets_out, "bytes-out": self.bytes_out,
            **({} if self.db_user is None else {
                "db-user": self.db_user, "application-name": self.application_name or "",
                "tls": bool(self.tls), "relayed": self.relayed}),
            **({} if self.audit_event_id is None else {"audit-event-id": self.audit_event_id}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowRecord:
        """A record as ``to_dict`` wrote it (the flows file); raises KeyError/TypeError/ValueError."""
        return cls(
            account_id=str(d["account-id"]), interface_id=str(d["interface-id"]), srcaddr=str(d["srcaddr"]),
            dstaddr=str(d["dstaddr"]), srcport=int(d["srcport"]), dstport=int(d["dstport"]), start=int(d["start"]),
            end=int(d["end"]), action="ACCEPT" if d["action"] == "ACCEPT" else "REJECT", reason=str(d["reason"]),
            endpoint_id=str(d["endpoint-id"]), connection_id=int(d["connection-id"]),
            phase="close" if d["phase"] == "close" else "open", packets=int(d["packets"]), bytes=int(d["bytes"]),
            packets_out=int(d.get("packets-out", 0)), bytes_out=int(d.get("bytes-out", 0)),
            db_user=None if d.get("db-user") is None else startup_name(str(d["db-user"])),
            application_name=startup_name(str(d.get("application-name") or "")) or None,
            tls=None if d.get("tls") is None else bool(d["tls"]), relayed=bool(d.get("relayed", False)),
            audit_event_id=None if d.get("audit-event-id") is None else str(d["audit-event-id"])[:64],
        )

    def line(self) -> str:
        """The record in the default (space-separated) VPC Flow Logs v2 format."""
        return " ".join(str(v) for v in (
            self.version, self.account_id, self.interface_id, self.srcaddr, self.dstaddr, self.srcport,
            self.dstport, self.protocol, self.packets, self.bytes, self.start, self.end, self.action,
            self.log_status))


ConnectionKey = tuple[int, int, int]


def connection_key(rec: FlowRecord) -> ConnectionKey:
    """What a connection's records share (connection ids restart with the process: the start and the
    source port tell an earlier run's apart)."""
    return (rec.connection_id, rec.start, rec.srcport)


class FlowLog:
    def __init__(self, path: Path | None = None, *, account_id: str = "000000000000", capacity: int = 10000,
                 max_file_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = path
        self.account_id = account_id
        self.max_file_bytes = max_file_bytes
        self.capacity = capacity
        self._ring: deque[FlowRecord] = deque(maxlen=capacity)
        self._count = 0
        # the logins of the connections still open, until their close records (bounded by the
        # gateway's connection limits: one entry per relayed connection)
        self._live: dict[ConnectionKey, FlowRecord] = {}
        self._logins = 0
        self._lock = threading.Lock()  # recent() may be called from another thread (tests, admin API)
        self._size = path.stat().st_size if path is not None and path.exists() else 0

    def record(self, rec: FlowRecord) -> None:
        with self._lock:
            self._ring.append(rec)
            self._count += 1
            if rec.phase == "close" and self._live:
                self._live.pop(connection_key(rec), None)
        if self.path is None:
            return
        line = (json.dumps(rec.to_dict(), separators=(",", ":")) + "\n").encode()
        try:
            if self._size + len(line) > self.max_file_bytes and self._size:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                self._size = 0
            # O_APPEND writes of one short line are atomic enough for a log; no handle to leak.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            self._size += len(line)
        except OSError as e:  # a full disk must not break connections
            log.warning("cannot write flow log %s: %s", self.path, e)

    @property
    def count(self) -> int:
        """How many records were ever recorded by this log (a version for readers that cache)."""
        return self._count

    def login(self, rec: FlowRecord) -> None:
        """A connection's login reached the relay: ``rec`` is its open record with what the startup
        packet said (``db_user``...), kept in memory until the connection's close record replaces it.
        Readers that poll ``logins`` see it at once (the security advisor, within half a second)."""
        with self._lock:
            self._live[connection_key(rec)] = rec
            self._logins += 1

    @property
    def logins(self) -> int:
        """How many logins were ever announced with ``login`` (a version for readers that cache; a
        login's end moves ``count``)."""
        return self._logins

    def live(self) -> list[FlowRecord]:
        """The logins of the connections open now (oldest first)."""
        with self._lock:
            return list(self._live.values())

    def view(self) -> tuple[list[FlowRecord], list[FlowRecord]]:
        """The records in memory (oldest first) and the live logins, taken at one moment: a connection
        is in exactly one of them as a login (its close record, or its live login), never both or
        neither."""
        with self._lock:
            return list(self._ring), list(self._live.values())

    def logins_before(self, since: float) -> list[FlowRecord]:
        """The close records with a startup packet (``db-user``) that ended at or after ``since``, from the
        file as earlier runs wrote it: what a reader of logins (the security advisor) needs from before
        this process started (the ring holds only this run's). Read once, at start; lines without
        ``db-user`` are skipped without being parsed."""
        out: list[FlowRecord] = []
        if self.path is None:
            return out
        for path in (self.path.with_name(self.path.name + ".1"), self.path):
            try:
                with open(path, "rb") as f:
                    for raw in f:
                        if b'"db-user"' not in raw:
                            continue
                        try:
                            rec = FlowRecord.from_dict(json.loads(raw))
                        except (ValueError, KeyError, TypeError):
                            continue
                        if rec.phase == "close" and rec.end >= since:
                            out.append(rec)
            except OSError:
                continue
        return out

    def recent(self, n: int = 100, endpoint: str | None = None) -> list[FlowRecord]:
        """The last ``n`` records (oldest first), optionally only those of one endpoint."""
        with self._lock:
            items = [r for r in self._ring if endpoint is None or r.endpoint_id == endpoint]
        return items[-n:] if n > 0 else []
