"""When the inside of a region's databases is read (``auroral.advisor.database`` reads it): the
triggers, over the region's store, the engine runtime and the gateway's flow log.

- ``poll()`` (the region's advisor poller, twice a second): each cluster one of whose sessions ended
  since the last poll (a close record at one of its instances' endpoints: every client's SQL comes
  through the gateway, so a short session's change is committed by then), and every
  ``PERIOD_SECONDS`` every readable cluster (what a long session changes; table writes);
- ``fresh()`` (GetFindings, before it answers): every readable cluster, by a read that starts now.

A cluster's written tables (one connection per database) are read only once a role other than its
master user has logged in at one of its endpoints (AURORAL.8 cannot fail otherwise): a login counts
when it happens (the gateway's live logins, ``FlowLog.live``), or from its close record.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any, Protocol

import psycopg

from auroral.gateway.flows import FlowLog, FlowRecord
from auroral.rds.model import KIND_CLUSTER, KIND_INSTANCE, Cluster
from auroral.store import Store

from .database import PERIOD_SECONDS, Connect, DatabaseReader, DatabaseState, Target

# cluster statuses in which the writer's server runs (a read of another would only fail)
READABLE = frozenset({"available", "modifying", "backing-up", "resetting-master-credentials", "renaming",
                      "upgrading"})
MAX_USERS_PER_ENDPOINT = 1000


class Runtime(Protocol):
    """What this module needs of :class:`~auroral.rds.local_runtime.LocalRuntime`."""

    async def admin_connection(self, cluster: Cluster, instance: Any = None, *,
                               dbname: str = "postgres") -> psycopg.AsyncConnection[tuple[Any, ...]]: ...


class DatabaseWatch:
    def __init__(self, store: Store, account: str, runtime: Runtime, flows: FlowLog | None,
                 earlier: list[FlowRecord]) -> None:
        self._store = store
        self._account = account
        self._runtime = runtime
        self._flows = flows
        self._flows_seen = flows.count if flows is not None else 0
        self._logins_seen = 0
        self._periodic_at = 0.0
        # the users seen logging in at each endpoint (an instance's resource id)
        self._users_at: dict[str, set[str]] = {}
        self._note_logins(earlier)
        self.reader = DatabaseReader()

    @property
    def version(self) -> int:
        """Moves when a read found something different (what the advisor's version includes)."""
        return self.reader.version

    def states(self) -> dict[str, DatabaseState]:
        return self.reader.states()

    async def fresh(self) -> None:
        """Every readable cluster read by a read that starts now (what GetFindings waits for)."""
        since = time.monotonic()
        await self.reader.fresh(self._targets(self._readable()), since=since)

    def poll(self) -> None:
        """Ask for the reads the last half second calls for (from the event loop)."""
        ended: set[str] = set()
        if self._flows is not None and self._flows.count != self._flows_seen:
            new = min(self._flows.count - self._flows_seen, self._flows.capacity)
            self._flows_seen = self._flows.count
            ended = self._note_logins(self._flows.recent(new))
        if self._flows is not None and self._flows.logins != self._logins_seen:
            # a login alone changes nothing inside: who it is matters to the next read's targets
            self._logins_seen = self._flows.logins
            self._note_logins(self._flows.live())
        now = time.monotonic()
        periodic = now - self._periodic_at >= PERIOD_SECONDS
        if not periodic and not ended:
            return
        if periodic:
            self._periodic_at = now
            present = {d.get("resource_id") for _a, _k, d in self._store.list(KIND_CLUSTER, self._account)}
            self.reader.drop({str(r) for r in present if r})
        for target in self._targets(self._readable(), None if periodic else ended):
            self.reader.request(target)

    async def close(self) -> None:
        await self.reader.close()

    def _readable(self) -> list[Cluster]:
        return [c for c in (Cluster.from_doc(d) for _a, _k, d in self._store.list(KIND_CLUSTER, self._account))
                if c.status in READABLE]

    def _note_logins(self, records: list[FlowRecord]) -> set[str]:
        """Remember who logged in where; the endpoints with a session that ended among ``records``."""
        ended: set[str] = set()
        for rec in records:
            if rec.db_user:  # a close record, or a live login (phase "open")
                if rec.phase == "close":
                    ended.add(rec.endpoint_id)
                users = self._users_at.setdefault(rec.endpoint_id, set())
                if len(users) < MAX_USERS_PER_ENDPOINT:
                    users.add(rec.db_user)
        return ended

    def _targets(self, clusters: list[Cluster], only: set[str] | None = None) -> list[Target]:
        """What to read of each cluster (``only``: of those with a session that ended at these endpoints)."""
        endpoints: dict[str, list[str]] = {}
        for _a, _k, d in self._store.list(KIND_INSTANCE, self._account):
            endpoints.setdefault(str(d.get("cluster_identifier")), []).append(str(d.get("resource_id")))
        out: list[Target] = []
        for cluster in clusters:
            mine = endpoints.get(cluster.identifier, [])
            if only is not None and not only.intersection(mine):
                continue
            others = any(self._users_at.get(e, set()) - {cluster.master_username} for e in mine)
            out.append(Target(cluster.resource_id, self._connector(cluster), others))
        return out

    def _connector(self, cluster: Cluster) -> Connect:
        runtime = self._runtime

        def connect(dbname: str) -> Awaitable[psycopg.AsyncConnection[tuple[Any, ...]]]:
            return runtime.admin_connection(cluster, dbname=dbname)

        return connect
