"""The servers of a cluster as :class:`~auroral.rds.local_runtime.LocalRuntime` keeps them: the *layout*
(which server each instance runs on, which one is the primary, a failover in progress: stored before
anything acts on it), the topology each server reports, the readers' lag, and failover.

Failover (:meth:`ReplicaSet.failover`): the old primary stops cleanly (a fast shutdown makes its
walsenders send the standbys every byte of WAL, the shutdown checkpoint included), the target is
checked to have replayed past that checkpoint (then no committed transaction is missing), and
promoted (``pg_promote``); the other standbys follow it (``primary_conninfo`` is reloadable), each
through a slot of its own there; the old primary starts again as a standby of the new one: as it is
when it stopped cleanly (its last record is the checkpoint the new one replayed, so it can follow), after
``pg_rewind`` when it crashed (it may hold WAL the new primary never got; ``wal_log_hints`` is on for
that), and cloned afresh with ``pg_basebackup`` when it still does not stream within
:data:`FOLLOW_TIMEOUT` seconds or has no usable data. The layout records
"failover in progress, target X" first; a restart of auroral settles it from the servers' control files
(the one not in recovery is the primary). When the primary dies and its supervisor has not brought it
back within :data:`AUTO_FAILOVER_AFTER` seconds, the control plane is told ``writer-lost`` and fails over
(``rds/failover.py``).

Readers' lag: every :data:`LAG_REFRESH_SECONDS` from the primary's ``pg_stat_replication.replay_lag``
(NULL once a standby has caught up and nothing new came: 0), handed to every server (a reload) only
when it changed, so an idle cluster reloads nothing. Computing it in SQL on each server was not sound: a
standby knows when it last replayed a commit, not whether the primary has written since.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from auroral.engine import EngineError, LocalEngine, PgServer, Standby, lsn_value
from auroral.engine.aurora import Member, Topology
from auroral.gateway import Gateway
from auroral.rds.model import Cluster, Instance
from auroral.rds.runtime import WRITER_LOST, RuntimeFailure, StatusListener
from auroral.store import Store

log = logging.getLogger(__name__)

KIND_SERVERS = "rds-servers"
# The primary is lost when it has not run again this long after it failed (its supervisor restarts it
# meanwhile): then readers take over (see the module docstring).
AUTO_FAILOVER_AFTER = 3.0
LAG_REFRESH_SECONDS = 1.0
# How long a failover waits for the target to replay the old primary's shutdown checkpoint.
CATCH_UP_TIMEOUT = 30.0
# How long a former primary started as a standby may take to stream from the new one before it is cloned.
FOLLOW_TIMEOUT = 10.0


def slot_name(server_id: str) -> str:
    """The primary's replication slot for a standby (slot names: lower-case letters, digits, ``_``)."""
    return "auroral_" + re.sub(r"[^a-z0-9_]", "_", server_id.lower())[:54]


def session_id(server_id: str) -> str:
    """A reader's ``session_id`` in ``aurora_replica_status()``: a UUID, stable for the server."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"auroral:{server_id}"))


@dataclass
class Layout:
    """Which server each instance runs on, which server is the primary, and an interrupted failover.
    Stored (``KIND_SERVERS``) before anything is done with it."""

    primary: str
    instances: dict[str, str] = field(default_factory=dict)  # DbiResourceId -> server id
    failover: dict[str, str] | None = None  # {"target": server id, "old": server id}
    # servers that may hold WAL the primary never got (former primaries that crashed): never started as
    # they are, but rewound or cloned afresh (ReplicaSet._bring_back)
    diverged: list[str] = field(default_factory=list)

    def to_doc(self) -> dict[str, Any]:
        return {"primary": self.primary, "instances": dict(self.instances), "failover": self.failover,
                "diverged": list(self.diverged)}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Layout:
        failover = doc.get("failover")
        return cls(str(doc["primary"]), {str(k): str(v) for k, v in (doc.get("instances") or {}).items()},
                   {str(k): str(v) for k, v in failover.items()} if isinstance(failover, dict) else None,
                   [str(x) for x in doc.get("diverged") or []])

    def instance_on(self, server_id: str) -> str | None:
        return next((dbi for dbi, sid in self.instances.items() if sid == server_id), None)


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class ReplicaSet:
    """The replication half of ``LocalRuntime`` (a mixin: ``LocalRuntime.__init__`` sets these)."""

    _store: Store
    _engine: LocalEngine
    _gateway: Gateway
    _listeners: list[StatusListener]
    _writer: dict[str, str]  # cluster resource id -> writer instance resource id
    _names: dict[str, str]  # DbiResourceId -> DBInstanceIdentifier, while its endpoint is open
    _layouts: dict[str, tuple[str, Layout]]  # cluster resource id -> (account, layout)
    _clusters: dict[str, Cluster]  # cluster resource id -> the cluster, as last seen
    _lag: dict[str, dict[str, int]]  # cluster resource id -> server id -> replay lag (ms)
    _lag_task: asyncio.Task[None] | None
    _watch: dict[str, asyncio.Task[None]]  # cluster resource id -> writer-lost timer
    _busy: set[str]  # clusters in a failover: their primary's events are ours

    def _watch_writer(self, cluster_id: str, server_id: str) -> None:
        """After :data:`AUTO_FAILOVER_AFTER` seconds, if the primary still does not run and a standby does,
        tell the control plane the writer is lost."""
        if cluster_id in self._watch and not self._watch[cluster_id].done():
            return

        async def watch() -> None:
            await asyncio.sleep(AUTO_FAILOVER_AFTER)
            known = self._layouts.get(cluster_id)
            if known is None or known[1].primary != server_id or cluster_id in self._busy:
                return
            with contextlib.suppress(EngineError):
                if self._engine.get_server(server_id).status() == "running":
                    return
            if not any(s.status() == "running" for s in self._engine.servers_of(cluster_id)
                       if s.server_id != server_id):
                return
            log.warning("cluster %s: the writer's server %s has not come back in %.0f s", cluster_id, server_id,
                        AUTO_FAILOVER_AFTER)
            for listener in self._listeners:
                listener(cluster_id, WRITER_LOST, f"the writer's PostgreSQL did not come back within "
                                                  f"{AUTO_FAILOVER_AFTER:.0f} s")

        self._watch[cluster_id] = asyncio.get_running_loop().create_task(watch(), name=f"watch-{cluster_id}")

    def _layout(self, cluster: Cluster) -> Layout:
        known = self._layouts.get(cluster.resource_id)
        if known is not None:
            return known[1]
        doc = self._store.get(KIND_SERVERS, cluster.account, cluster.resource_id)
        layout = Layout.from_doc(doc) if doc is not None else Layout(cluster.resource_id)
        self._layouts[cluster.resource_id] = (cluster.account, layout)
        return layout

    def _save_layout(self, cluster: Cluster, layout: Layout) -> None:
        self._store.put(KIND_SERVERS, cluster.account, cluster.resource_id, layout.to_doc())
        self._layouts[cluster.resource_id] = (cluster.account, layout)

    def _server(self, cluster: Cluster) -> PgServer:
        """The cluster's primary: the writer's server (master-password operations, admin SQL)."""
        try:
            return self._engine.get_server(self._layout(cluster).primary)
        except EngineError:
            raise RuntimeFailure(f"the PostgreSQL server of cluster {cluster.identifier} is not known") from None

    def _servers(self, cluster: Cluster) -> list[PgServer]:
        """Every server of the cluster that has data, the primary first."""
        primary = self._layout(cluster).primary
        servers = [s for s in self._engine.servers_of(cluster.resource_id) if s.status() != "not-initialized"]
        return sorted(servers, key=lambda s: s.server_id != primary)

    def writer_of(self, cluster: Cluster) -> str | None:
        """The DbiResourceId of the instance running on the primary (None: no instance does)."""
        layout = self._layout(cluster)
        return layout.instance_on(layout.primary)

    def server_of(self, cluster: Cluster, instance: Instance) -> PgServer | None:
        sid = self._layout(cluster).instances.get(instance.resource_id)
        if sid is None:
            return None
        try:
            return self._engine.get_server(sid)
        except EngineError:
            return None

    def _topology(self, cluster: Cluster, server: PgServer) -> Topology:
        """What ``server`` says it is (``aurora_version()``, ``aurora_db_instance_identifier()``,
        ``aurora_replica_status()``): every member whose endpoint is open, the writer first."""
        layout = self._layout(cluster)
        lags = self._lag.get(cluster.resource_id, {})
        members: list[Member] = []
        writer = layout.instance_on(layout.primary)
        if writer in self._names:
            members.append(Member(self._names[writer]))
        for dbi, sid in sorted(layout.instances.items(), key=lambda item: self._names.get(item[0], "")):
            if sid != layout.primary and dbi in self._names:
                members.append(Member(self._names[dbi], session_id(sid), float(lags.get(sid, 0))))
        me = layout.instance_on(server.server_id)
        return Topology(engine_version=cluster.engine_version, instance_identifier=self._names.get(me or "", ""),
                        members=tuple(members))

    async def _tell_topology(self, cluster: Cluster, server: PgServer) -> None:
        try:
            await server.set_topology(self._topology(cluster, server))
        except (EngineError, psycopg.Error, OSError, ValueError) as exc:
            raise RuntimeFailure(f"the server of {cluster.identifier} did not take its topology: "
                                 f"{first_line(exc)}") from exc

    async def _tell_topology_all(self, cluster: Cluster) -> None:
        """Every running server of the cluster learns the current topology (one that cannot is logged)."""
        for server in self._servers(cluster):
            if server.status() != "running":
                continue
            try:
                await self._tell_topology(cluster, server)
            except RuntimeFailure as exc:
                log.warning("cluster %s: %s", cluster.identifier, exc.reason)

    async def _settle_failover(self, cluster: Cluster, layout: Layout) -> None:
        """auroral stopped during a failover (every server is stopped now): the target is the primary if
        its promotion happened (its control file says it is not in recovery), else the old primary stays.
        A promoted target's old primary is cloned afresh (it may hold WAL the new one never got)."""
        assert layout.failover is not None
        target, old = layout.failover["target"], layout.failover.get("old", "")
        try:
            state = (await self._engine.get_server(target).control_data()).get("Database cluster state", "")
        except (EngineError, OSError) as exc:
            log.warning("cluster %s: cannot read the failover target's state: %s", cluster.identifier, exc)
            state = ""
        promoted = "recovery" not in state and state != ""
        log.warning("cluster %s: finishing an interrupted failover to %s (%s)", cluster.identifier, target,
                    "promoted" if promoted else "not promoted: the old writer stays")
        if promoted:
            layout.primary = target
            if old and old != target and old not in layout.diverged:
                layout.diverged.append(old)
        layout.failover = None
        self._save_layout(cluster, layout)

    async def _drop_stale_slots(self, cluster: Cluster, primary: PgServer) -> None:
        """Slots of servers that are gone (a reader deleted while the cluster was stopped) would keep WAL
        on the primary forever: dropped at start."""
        if primary.status() != "running":
            return
        wanted = {slot_name(sid) for sid in self._layout(cluster).instances.values()}
        try:
            rows = await primary.run_admin_sql(
                "SELECT slot_name FROM pg_catalog.pg_replication_slots WHERE slot_name LIKE 'auroral\\_%'")
            for (name,) in rows:
                if name not in wanted:
                    await primary.drop_slot(str(name))
        except (EngineError, psycopg.Error) as exc:
            log.warning("cluster %s: stale replication slots not dropped: %s", cluster.identifier, first_line(exc))

    async def _drop_server(self, cluster: Cluster, sid: str) -> None:
        try:
            server = self._engine.get_server(sid)
        except EngineError:
            return
        if sid == cluster.resource_id:
            await server.discard()  # the first server's directory holds the others
        else:
            await self._engine.delete_replica(sid)

    async def _reclone(self, cluster: Cluster, sid: str, primary: PgServer) -> PgServer:
        """Replace a server's data with a fresh clone of the primary, as a standby of it."""
        log.warning("cluster %s: cloning server %s afresh from %s", cluster.identifier, sid, primary.server_id)
        await self._drop_server(cluster, sid)
        return await self._engine.create_replica(cluster.resource_id, sid, primary, slot_name(sid))

    async def failover(self, cluster: Cluster, target: Instance, *, rejoin: bool = True) -> bool:
        """Make ``target``'s server the primary, losing no committed transaction when the old primary
        can stop cleanly (see the module docstring); with ``rejoin`` the old primary becomes a standby of
        the new one (else its instance is being deleted: it is left stopped). Connections to the old
        writer's endpoint are closed; the cluster endpoint follows the new writer. Returns whether the old
        primary serves again (as a standby)."""
        layout = self._layout(cluster)
        new_sid = layout.instances.get(target.resource_id)
        old_sid = layout.primary
        if new_sid is None or new_sid == old_sid:
            raise RuntimeFailure(f"{target.identifier} is not a reader of {cluster.identifier}")
        try:
            new = self._engine.get_server(new_sid)
            old = self._engine.get_server(old_sid)
        except EngineError as exc:
            raise RuntimeFailure(str(exc)) from exc
        if new.status() != "running":
            raise RuntimeFailure(f"the server of {target.identifier} is {new.status()}")
        layout.failover = {"target": new_sid, "old": old_sid}
        self._save_layout(cluster, layout)  # before acting: a restart of auroral finishes it
        self._busy.add(cluster.resource_id)
        try:
            await self._hand_over(cluster, layout, old, new, rejoin=rejoin)
        finally:
            self._busy.discard(cluster.resource_id)
        await self._tell_topology_all(cluster)
        return old.status() == "running"

    async def _hand_over(self, cluster: Cluster, layout: Layout, old: PgServer, new: PgServer, *,
                         rejoin: bool) -> None:
        started = time.monotonic()
        old_writer = layout.instance_on(old.server_id)
        clean = False
        try:
            if old.status() != "not-initialized":
                await old.stop()  # fast shutdown: connected standbys get all WAL, the shutdown checkpoint too
                try:
                    control = await old.control_data()
                except EngineError as exc:  # a data directory damaged enough not to start
                    log.warning("cluster %s: %s: %s", cluster.identifier, old.server_id, first_line(exc))
                    control = {}
                clean = control.get("Database cluster state") == "shut down"
                if clean:
                    await self._catch_up(new, control.get("Latest checkpoint location", "0/0"))
            if not clean:
                await self._catch_up(new, None)
            await new.promote()
        except (EngineError, psycopg.Error, OSError, RuntimeFailure) as exc:
            # nothing promoted: the old primary goes on (if it can)
            layout.failover = None
            self._save_layout(cluster, layout)
            with contextlib.suppress(EngineError):
                if old.status() != "not-initialized":
                    await old.start()
            raise RuntimeFailure(f"failover to {new.server_id} failed: {first_line(exc)}") from exc
        layout.primary = new.server_id
        if not clean and old.server_id not in layout.diverged:
            layout.diverged.append(old.server_id)
        self._save_layout(cluster, layout)
        writer = layout.instance_on(new.server_id)
        if writer is not None and writer in self._names:
            self._writer[cluster.resource_id] = writer
        else:
            self._writer.pop(cluster.resource_id, None)
        if old_writer is not None:
            await self._gateway.drop_sessions(old_writer)
        log.warning("cluster %s: %s promoted in %.2f s (old primary %s stopped %s)", cluster.identifier,
                    new.server_id, time.monotonic() - started, old.server_id, "cleanly" if clean else "uncleanly")
        # the other standbys follow the new primary (a reload), each through a slot of its own there
        for server in self._servers(cluster):
            if server in (old, new):
                continue
            try:
                await new.ensure_slot(slot_name(server.server_id))
                await server.follow(Standby(new.socket_dir, slot_name(server.server_id)))
            except (EngineError, psycopg.Error, OSError) as exc:
                log.warning("cluster %s: standby %s does not follow %s: %s", cluster.identifier, server.server_id,
                            new.server_id, first_line(exc))
        if rejoin and old.status() != "not-initialized":
            await self._rejoin(cluster, layout, old, new, clean=clean)
        elif layout.instance_on(old.server_id) is None:
            await self._drop_server(cluster, old.server_id)  # no instance runs there any more
        layout.failover = None
        self._save_layout(cluster, layout)
        log.warning("cluster %s: failover to %s done in %.2f s", cluster.identifier, new.server_id,
                    time.monotonic() - started)

    async def _catch_up(self, server: PgServer, checkpoint: str | None) -> None:
        """Until ``server`` (a standby) has replayed past ``checkpoint`` (the old primary's shutdown
        checkpoint: then it has every committed transaction); without one, until it has replayed all it
        received. RuntimeFailure when it does not get there in :data:`CATCH_UP_TIMEOUT` seconds."""
        deadline = time.monotonic() + CATCH_UP_TIMEOUT
        while True:
            position = await server.wal_position()
            if not position.in_recovery:
                raise RuntimeFailure(f"{server.server_id} is not a standby")
            replayed = lsn_value(position.replayed or "0/0")
            if checkpoint is not None and replayed > lsn_value(checkpoint):
                return
            if checkpoint is None and replayed >= lsn_value(position.received or "0/0"):
                return
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"{server.server_id} replayed only up to {position.replayed}, not past the "
                                     f"writer's last checkpoint {checkpoint}")
            await asyncio.sleep(0.01)

    async def _rejoin(self, cluster: Cluster, layout: Layout, old: PgServer, new: PgServer, *, clean: bool) -> None:
        """The former primary becomes a standby of the new one (:meth:`_bring_back`); when even a clone
        fails it is marked, and brought back at the cluster's next start."""
        try:
            await self._bring_back(cluster, old, new, clean=clean)
            if old.server_id in layout.diverged:
                layout.diverged.remove(old.server_id)
        except (EngineError, psycopg.Error, OSError) as exc:
            log.warning("cluster %s: %s did not rejoin as a reader: %s", cluster.identifier, old.server_id,
                        first_line(exc))
            if old.server_id not in layout.diverged:
                layout.diverged.append(old.server_id)

    async def _bring_back(self, cluster: Cluster, server: PgServer, primary: PgServer, *, clean: bool) -> None:
        """Make ``server`` a standby of ``primary``. Stopped cleanly after the primary replayed its shutdown
        checkpoint (``clean``), it follows as it is. Otherwise it may hold WAL the primary never got (it
        crashed): ``pg_rewind`` takes it back to the point where the timelines forked. If it then does not
        stream within :data:`FOLLOW_TIMEOUT` seconds (or has no usable data at all), it is cloned afresh."""
        slot = slot_name(server.server_id)
        await primary.ensure_slot(slot)
        if server.status() != "not-initialized":
            try:
                if not clean:
                    await server.stop()
                    await server.rewind(primary)
                await server.follow(Standby(primary.socket_dir, slot))
                await server.start()
                if await self._streaming(primary, server.server_id):
                    # the slots it kept from its time as primary would hold WAL back for nobody
                    await server.run_admin_sql(
                        "SELECT pg_catalog.pg_drop_replication_slot(slot_name) "
                        "FROM pg_catalog.pg_replication_slots WHERE NOT active")
                    log.warning("cluster %s: %s follows %s (%s)", cluster.identifier, server.server_id,
                                primary.server_id, "as it was" if clean else "rewound")
                    return
                log.warning("cluster %s: %s does not stream from %s", cluster.identifier, server.server_id,
                            primary.server_id)
            except (EngineError, psycopg.Error, OSError) as exc:
                log.warning("cluster %s: %s cannot follow %s: %s", cluster.identifier, server.server_id,
                            primary.server_id, first_line(exc))
            with contextlib.suppress(EngineError):
                await server.stop()
        await self._reclone(cluster, server.server_id, primary)

    async def _streaming(self, primary: PgServer, sid: str) -> bool:
        deadline = time.monotonic() + FOLLOW_TIMEOUT
        while time.monotonic() < deadline:
            rows = await primary.run_admin_sql(
                "SELECT 1 FROM pg_catalog.pg_stat_replication WHERE application_name = %s AND state = 'streaming'",
                (sid,))
            if rows:
                return True
            await asyncio.sleep(0.05)
        return False

    def _start_lag_refresh(self) -> None:
        if self._lag_task is None or self._lag_task.done():
            self._lag_task = asyncio.get_running_loop().create_task(self._refresh_lag(), name="replica-lag")

    async def _refresh_lag(self) -> None:
        """Every :data:`LAG_REFRESH_SECONDS`: each cluster's readers' replay lag from its primary's
        ``pg_stat_replication`` (``replay_lag``; NULL once a standby has caught up and nothing new came,
        which is 0). A change goes to every server of the cluster (a reload); none, nothing happens."""
        while True:
            await asyncio.sleep(LAG_REFRESH_SECONDS)
            for rid, cluster in list(self._clusters.items()):
                if rid in self._busy or rid not in self._layouts:
                    continue
                layout = self._layouts[rid][1]
                if len(layout.instances) < 2:
                    continue
                try:
                    primary = self._engine.get_server(layout.primary)
                    if primary.status() != "running":
                        continue
                    rows = await primary.run_admin_sql(
                        "SELECT application_name, COALESCE(EXTRACT(epoch FROM replay_lag) * 1000, 0)::bigint "
                        "FROM pg_catalog.pg_stat_replication")
                except (EngineError, psycopg.Error, OSError) as exc:
                    log.debug("cluster %s: replica lag not read: %s", rid, exc)
                    continue
                lags = {str(name): int(lag) for name, lag in rows}
                current = {sid: lags.get(sid, 0) for sid in layout.instances.values() if sid != layout.primary}
                if current != self._lag.get(rid):
                    self._lag[rid] = current
                    with contextlib.suppress(RuntimeFailure, EngineError):
                        await self._tell_topology_all(cluster)
