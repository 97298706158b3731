"""The local engine: PostgreSQL servers as child processes of this auroral process.

Layout under the engine root (see :func:`engine_root`)::

    bin/<source>-<version>-<hash>/  a copy of a PostgreSQL installation the OS users cannot read in place
    dist/, pg/<version>/       PostgreSQL majors fetched on first use (``fetch.py``; ``AURORAL_ENGINE_CACHE``
                               puts them elsewhere), root-owned and world-readable: run in place
    ext/pg<major>-<hash>/      the auroral_rds server module, compiled for that major (see extension.py)
    templates/pg<major>/       one initialized data directory per major (see template.py)
    clusters/<resource id>/    the cluster's first server: pgdata/, log/, pglog/, run/, osuser (see cluster.py)
        replicas/<server id>/  each further server of the cluster (a reader's hot standby; after a
                               failover any of them may be the primary): pgdata/, log/, pglog/, run/

Where the engine root is: PostgreSQL's OS users must reach it by path, and auroral changes no permission
outside its own directories (no ACL on a ``0700`` home). Not running as root, it is ``<data_dir>/engine``
(PostgreSQL runs as ourselves). As root, the data directory stays ``0700`` and the engine root is
``/var/lib/auroral/<hash of the data directory's path>/`` (``AURORAL_ENGINE_BASE`` replaces
``/var/lib/auroral``), root-owned ``0711``, with ``<data_dir>/engine`` a symlink to it; the binary copies
are shared by every installation in ``/var/lib/auroral/bin``. Removing an installation means removing
both. An engine directory of an earlier version (a real ``<data_dir>/engine``) moves there on start when
it can (same filesystem, no process working in it); otherwise it is used in place, reached through the
ACLs that version granted to ``auroral-pg``, and new clusters run as ``auroral-pg`` (logged).

As root every cluster has its own OS user (see ``osuser``), recorded in ``clusters/<id>/osuser``
(root-owned, like the cluster directory itself) before the user is created, and removed with the
cluster. A cluster created before per-cluster users (its files owned by the service user
``auroral-pg``) gets its own user when it is recovered.

Deleting writes ``clusters/<id>/.deleting`` first, so a crash half-way is finished by :meth:`recover`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from auroral.engine import binaries, extension, fetch, fsafe, osuser, postmaster, proc
from auroral.engine.binaries import Installation
from auroral.engine.cluster import (
    CLONING_MARKER,
    PgServer,
    RestartPolicy,
    StatusCallback,
    settle_upgrade,
    stop_upgrade_leftovers,
)
from auroral.engine.errors import EngineError, NoInstallationError, ServerExistsError, ServerNotFoundError
from auroral.engine.osuser import RunAs
from auroral.engine.template import TemplateStore

_CLUSTER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
DELETING_MARKER = ".deleting"
REPLICAS_DIR = "replicas"
OSUSER_FILE = "osuser"
ENGINE_BASE = Path("/var/lib/auroral")
ENV_ENGINE_BASE = "AURORAL_ENGINE_BASE"
log = logging.getLogger(__name__)


def engine_root(data_dir: Path, runas: RunAs) -> Path:
    """Where the engine keeps its files for ``data_dir`` (see the module docstring); nothing is
    created here (see :func:`establish_root`)."""
    inside = data_dir / "engine"
    if runas.is_current:
        return inside
    outside = outside_root(data_dir)
    if inside.is_dir() and not inside.is_symlink() and not _movable(inside, outside):
        return inside
    return outside


def outside_root(data_dir: Path) -> Path:
    base = Path(os.environ.get(ENV_ENGINE_BASE) or ENGINE_BASE)
    return base / hashlib.sha256(os.fsencode(str(data_dir.resolve()))).hexdigest()[:16]


def _movable(legacy: Path, target: Path) -> bool:
    """Whether an engine directory of an earlier version can move to ``target`` now: a rename on the
    same filesystem, no process working in it (a postmaster that outlived a killed auroral)."""
    if target.exists():
        return False
    existing = next(p for p in target.parents if p.exists())
    if existing.stat().st_dev != legacy.stat().st_dev:
        return False
    prefix = str(legacy.resolve()) + os.sep
    for entry in os.scandir("/proc"):
        try:
            if entry.name.isdigit() and (os.readlink(f"/proc/{entry.name}/cwd") + os.sep).startswith(prefix):
                return False
        except OSError:
            continue
    return True


def establish_root(data_dir: Path, root: Path) -> None:
    """Create the engine root: inside the data directory, or outside with ``<data_dir>/engine`` a
    symlink to it and ``<root>/data_dir`` naming the data directory (for the administrator). An engine
    directory of an earlier version inside the data directory is moved out: its clusters' configuration
    names no path of the old place that is not rewritten at start; its templates, which any server of
    that version could write (they all ran as ``auroral-pg``), are rebuilt."""
    inside = data_dir / "engine"
    if root == inside:
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o711)
        return
    _root_only_dir(root.parent)
    if inside.is_dir() and not inside.is_symlink() and not root.exists():
        os.rename(inside, root)
        shutil.rmtree(root / "templates", ignore_errors=True)
        log.warning("moved the engine directory %s to %s (PostgreSQL's users reach it there)", inside, root)
    _root_only_dir(root)
    fsafe.write_file(root / "data_dir", os.fsencode(str(data_dir.resolve())) + b"\n", mode=0o600)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if inside.is_symlink() and os.readlink(inside) != str(root):
        inside.unlink()
    if not inside.is_symlink():
        inside.symlink_to(root)


def _root_only_dir(path: Path) -> None:
    """``path`` as a directory of ours, ``0711``: others may traverse it, only we may change it."""
    path.mkdir(mode=0o711, parents=True, exist_ok=True)
    st = path.lstat()
    if path.is_symlink() or st.st_uid != os.geteuid():
        raise PermissionError(f"{path} is not a directory owned by us")
    os.chmod(path, 0o711)


@dataclass
class RecoveryReport:
    started: list[str] = field(default_factory=list)
    adopted_orphans: list[str] = field(default_factory=list)  # clusters whose old postmaster we stopped
    deleted: list[str] = field(default_factory=list)  # interrupted deletes, finished now
    unknown: list[str] = field(default_factory=list)  # directories the caller does not know (data kept)
    missing: list[str] = field(default_factory=list)  # known clusters without a data directory
    failed: dict[str, str] = field(default_factory=dict)


class LocalEngine:
    """:class:`auroral.engine.Engine` with local PostgreSQL processes."""

    def __init__(
        self,
        data_dir: Path,
        *,
        installations: list[Installation] | None = None,
        runas: RunAs | None = None,
        on_status_change: StatusCallback | None = None,
        restart_policy: RestartPolicy | None = None,
        min_major: int = 0,
    ) -> None:
        """``installations``: exactly these (nothing is discovered or fetched); else discovered ones
        (``binaries.available``) and, unless ``AURORAL_ENGINE_FETCH=0``, fetched ones. ``min_major``: no
        older major is served, whatever its source."""
        self.data_dir = data_dir
        self.runas = runas or osuser.service_user()
        self.root = engine_root(data_dir, self.runas)
        # one OS user per cluster: only as root, with a service user that is not ourselves, and not in
        # an engine directory of an earlier version that could not move (reached through ACLs for the
        # service user only)
        self.isolated = os.geteuid() == 0 and not self.runas.is_current and self.root != data_dir / "engine"
        if os.geteuid() == 0 and not self.runas.is_current and not self.isolated:
            log.warning("%s could not move out of the data directory: new clusters run as %s, not as "
                        "their own OS users (stop auroral, move it to %s, start again)", self.root,
                        self.runas.name, outside_root(data_dir))
        self.bin_dir = self.root.parent / "bin" if self.root.parent != data_dir else self.root / "bin"
        self._installations = installations
        self.min_major = min_major
        self.fetch_cache = fetch.cache_root(self.root)
        self.fetching = installations is None and fetch.enabled()
        self._on_status_change = on_status_change
        self._restart_policy = restart_policy
        self._servers: dict[str, PgServer] = {}
        self._runnable: dict[Path, Installation] = {}
        self.clusters_dir = self.root / "clusters"
        self.templates = TemplateStore(self.root / "templates", self.runas)
        self._prepared = False

    def _prepare(self) -> None:
        if self._prepared:
            return
        establish_root(self.data_dir, self.root)
        self.clusters_dir.mkdir(exist_ok=True)
        os.chmod(self.clusters_dir, 0o711)
        osuser.check_traversable(self.clusters_dir, self.runas)
        self._prepared = True

    def pool(self) -> list[Installation]:
        """The installations at hand (nothing fetched now), newest major first, preferred first. Of those
        discovered, a 14 or 15 without server headers is left out (no ``auroral_rds`` can be built for it,
        and without it a master could reach the server's OS user: see ``_runnable_copy``)."""
        pool = [i for i in self._discovered() if i.major >= self.min_major]
        if self._installations is None and os.environ.get(extension.ENV_ALLOW_BELOW_16) != "1":
            pool = [i for i in pool if i.major >= 16 or i.headers]
        return pool

    def majors(self) -> list[int]:
        """The majors this engine serves exactly: those at hand, and those it can fetch."""
        served = {i.major for i in self.pool()}
        if self.fetching:
            served |= {m for m in fetch.FETCHABLE if m >= self.min_major}
        return sorted(served)

    def choose(self, major: int, *, fetch_missing: bool) -> Installation:
        """The installation of exactly ``major``. With ``fetch_missing`` (blocking: call it in a thread),
        a major that is not at hand, or at hand only without server headers (no ``auroral_rds``: see
        ``binaries``), is fetched first."""
        if major < self.min_major:
            raise NoInstallationError(f"PostgreSQL {major} is not served by this auroral (majors before 16 need a C "
                                      "compiler for the auroral_rds module, which keeps the master from the "
                                      "server's OS user)")
        found = [i for i in self.pool() if i.major == major]
        best = found[0] if found else None
        weak = best is not None and not (best.headers or best.source == "env")
        if (best is None or weak) and fetch_missing and self.fetching and major in fetch.FETCHABLE:
            try:
                prefix = fetch.fetch(major, self.fetch_cache)
            except fetch.FetchError as exc:
                if best is None:
                    raise
                log.warning("PostgreSQL %s: serving %s (no server headers: without the auroral_rds module) "
                            "because a build with headers could not be fetched: %s", major, best.bindir, exc)
                return best
            fetched = binaries.available(refresh=True, fetched=self.fetch_cache)
            best = next((i for i in fetched if i.major == major and i.bindir == (prefix / "bin").resolve()), None)
            if best is None:
                raise fetch.FetchError(f"the fetched PostgreSQL {major} in {prefix} does not run")
        if best is None:
            have = ", ".join(str(i.major) for i in self.pool()) or "none"
            hint = (f"`auroral engine install {major}` fetches it ahead of time"
                    if major in fetch.FETCHABLE else "no build of it can be fetched")
            raise NoInstallationError(f"PostgreSQL {major} is not installed (installed: {have}; fetching is "
                                      f"{'on' if self.fetching else 'off'}; {hint})")
        return best

    def install(self, major: int, progress: fetch.Progress | None = None) -> Installation:
        """``auroral engine install``: fetch ``major`` now unless an installation of it with server headers
        is at hand (whether or not automatic fetching is on, and whatever ``min_major`` says)."""
        at_hand = [i for i in self._discovered() if i.major == major and (i.headers or i.source == "env")]
        if at_hand:
            return at_hand[0]
        if self.fetch_cache == self.root:
            self._prepare()
        prefix = fetch.fetch(major, self.fetch_cache, progress=progress)
        inst = binaries.probe(prefix / "bin", "fetched")
        if inst is None or inst.major != major:
            raise fetch.FetchError(f"the fetched PostgreSQL {major} in {prefix} does not run")
        binaries.available(refresh=True, fetched=self.fetch_cache)
        return inst

    def _discovered(self) -> list[Installation]:
        return list(self._installations) if self._installations is not None else binaries.available(
            fetched=self.fetch_cache)

    def installation(self, engine_version: str) -> Installation:
        """The installation serving ``engine_version``, runnable by the service user, among those at
        hand (nothing is fetched: see :meth:`installation_for`)."""
        return self._runnable_copy(self.choose(binaries.parse_major(engine_version), fetch_missing=False))

    async def installation_for(self, engine_version: str) -> Installation:
        """:meth:`installation`, fetching the major first if needed (in a thread: the loop runs on)."""
        major = binaries.parse_major(engine_version)
        if self.fetching and self.fetch_cache == self.root:
            self._prepare()
        inst = await asyncio.to_thread(self.choose, major, fetch_missing=True)
        return self._runnable_copy(inst)

    def _runnable_copy(self, inst: Installation) -> Installation:
        if inst.bindir not in self._runnable:
            self._prepare()
            copy = osuser.runnable(inst, self.runas, self.bin_dir)
            # compiled from the original installation: the copy leaves the server headers out
            module = extension.ensure_built(inst, self.root / "ext")
            if module is not None:
                osuser.check_traversable(module.parent, self.runas)
                copy = replace(copy, preload=(module,))
            elif inst.major < 16 and os.environ.get(extension.ENV_ALLOW_BELOW_16) != "1":
                # a CREATEROLE master could grant itself pg_execute_server_program (see auroral_rds.c)
                raise EngineError(f"PostgreSQL {inst.major} is served only with the auroral_rds module, which "
                                  "could not be built (it needs gcc and the server headers)")
            self._runnable[inst.bindir] = copy
        return self._runnable[inst.bindir]

    async def _for_major(self, major: int) -> Installation:
        """The installation for an existing data directory (its PG_VERSION): exactly that major."""
        return await self.installation_for(str(major))

    def _server(self, cluster_id: str, inst: Installation, admin_password: str, runas: RunAs,
                server_id: str | None = None) -> PgServer:
        directory = self.clusters_dir / cluster_id
        if server_id is not None and server_id != cluster_id:
            directory = directory / REPLICAS_DIR / server_id
        return PgServer(
            cluster_id, directory, inst, runas, self.templates, admin_password,
            on_status_change=self._on_status_change, restart_policy=self._restart_policy, server_id=server_id,
        )

    # ---- the OS user of each cluster -------------------------------------------------------------

    def _recorded_user(self, cluster_id: str) -> tuple[str, int | None] | None:
        try:
            fields = fsafe.read_text(self.clusters_dir / cluster_id / OSUSER_FILE).split()
        except FileNotFoundError:
            return None
        if not fields or not osuser.is_cluster_user_name(fields[0]):
            raise EngineError(f"cluster {cluster_id}: unreadable {OSUSER_FILE} record")
        return fields[0], int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None

    def _cluster_user(self, cluster_id: str, *, create: bool) -> RunAs:
        """The OS user of a cluster (created if missing; the service user when not isolated)."""
        if not self.isolated:
            return self.runas
        record = self.clusters_dir / cluster_id / OSUSER_FILE
        recorded = self._recorded_user(cluster_id)
        if recorded is None:
            osuser.make_private_dir(record.parent, osuser.current(), 0o711)
            # recorded before acting: a crash from here on leaves a name that delete/recover remove
            recorded = (osuser.cluster_user_name(self.root, cluster_id), None)
            fsafe.write_file(record, f"{recorded[0]}\n".encode())
        name, uid = recorded
        runas = osuser.create_user(name, f"auroral cluster {cluster_id}", uid)
        if uid is None:
            fsafe.write_file(record, f"{name} {runas.uid}\n".encode())
        if not create:
            # files still the service user's: a cluster of an earlier version (any of whose servers could
            # write them), or a create interrupted between the clone and its chown. Handed over through
            # descriptors (see fsafe.chown_tree)
            cluster_dir = record.parent
            for sub in ("pgdata", "run", "pglog"):
                if (cluster_dir / sub).is_dir():
                    fsafe.chown_tree(cluster_dir / sub, self.runas.uid, runas.uid, runas.gid)
        return runas

    async def _remove_cluster_user(self, cluster_id: str) -> None:
        """Kill whatever still runs as the cluster's user and remove the user (files stay)."""
        if not self.isolated:
            return
        recorded = self._recorded_user(cluster_id)
        if recorded is None:
            return
        runas = osuser.lookup(recorded[0])
        if runas is not None:
            await asyncio.to_thread(osuser.remove_user, runas)

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
    ) -> PgServer:
        """A new running server. ``admin_password`` is rdsadmin's; the caller keeps it (encrypted)."""
        return await self._new_server(
            cluster_id, engine_version, admin_password,
            lambda server: server.create(master_username, master_password, database_name, parameters))

    async def restore_server(self, cluster_id: str, engine_version: str, *, admin_password: str,
                             chunks: AsyncIterator[bytes], wal: AsyncIterator[tuple[str, bytes]] | None = None,
                             target_time: str | None = None) -> PgServer:
        """A new running server of a new cluster, made from a base backup's tar stream (a snapshot of
        another cluster: ``PgServer.restore_backup``), as the new cluster's own OS user. ``admin_password``
        is rdsadmin's in that data (the source cluster's)."""
        return await self._new_server(cluster_id, engine_version, admin_password,
                                      lambda server: server.restore_backup(chunks, wal, target_time))

    async def _new_server(self, cluster_id: str, engine_version: str, admin_password: str,
                          make: Callable[[PgServer], Awaitable[None]]) -> PgServer:
        """The first server of a new cluster, as its own OS user, made by ``make`` (created or restored);
        on any failure nothing of it stays."""
        if not _CLUSTER_ID.match(cluster_id):
            raise EngineError(f"invalid cluster id {cluster_id!r}")
        if cluster_id in self._servers or (self.clusters_dir / cluster_id).exists():
            raise ServerExistsError(f"cluster {cluster_id} already exists")
        self._prepare()
        inst = await self.installation_for(engine_version)
        try:
            runas = await asyncio.to_thread(self._cluster_user, cluster_id, create=True)
        except BaseException:
            await self._remove_cluster_user(cluster_id)
            shutil.rmtree(self.clusters_dir / cluster_id, ignore_errors=True)
            raise
        server = self._server(cluster_id, inst, admin_password, runas)
        self._servers[cluster_id] = server
        try:
            await make(server)
        except BaseException:
            self._servers.pop(cluster_id, None)
            await self._delete(server)
            raise
        return server

    def get_server(self, cluster_id: str) -> PgServer:
        """A server by its id: a cluster's id names its first server."""
        try:
            return self._servers[cluster_id]
        except KeyError:
            raise ServerNotFoundError(f"cluster {cluster_id} not found") from None

    def servers_of(self, cluster_id: str) -> list[PgServer]:
        """Every server of a cluster (its first one first)."""
        return sorted((s for s in self._servers.values() if s.cluster_id == cluster_id),
                      key=lambda s: (s.server_id != cluster_id, s.server_id))

    async def create_replica(self, cluster_id: str, server_id: str, primary: PgServer, slot: str) -> PgServer:
        """A new server of the cluster: a running hot standby of ``primary`` (see ``PgServer.create_replica``),
        as the cluster's OS user, under ``clusters/<cluster>/replicas/<server_id>``."""
        if not _CLUSTER_ID.match(server_id):
            raise EngineError(f"invalid server id {server_id!r}")
        first = self.get_server(cluster_id)
        existing = self._servers.get(server_id)
        if existing is not None and existing.status() != "not-initialized":
            raise ServerExistsError(f"server {server_id} already exists")
        parent = first.cluster_dir / REPLICAS_DIR
        if not parent.is_dir():
            osuser.make_private_dir(parent, osuser.current(), 0o711)
        server = existing or self._server(cluster_id, primary.installation, first._admin_password, first.runas,
                                          server_id)
        self._servers[server_id] = server
        try:
            await server.create_replica(primary, slot)
        except BaseException:
            if server_id == cluster_id:  # the first server: its directory holds the others
                await server.discard()
            else:
                await self.delete_replica(server_id)
            raise
        return server

    async def upgrade_server(self, server_id: str, engine_version: str) -> PgServer:
        """Upgrade a stopped primary to the major serving ``engine_version`` (``PgServer.upgrade_major``):
        the new installation is made runnable (and the server module built for it) first."""
        server = self.get_server(server_id)
        target = await self.installation_for(engine_version)  # fetched first if needed
        if target.major != server.major:
            await server.upgrade_major(target)
        return server

    def finish_upgrade(self, server: PgServer) -> None:
        """The upgraded server runs: its old data directory goes."""
        settle_upgrade(server.cluster_dir)

    async def delete_replica(self, server_id: str) -> None:
        """Stop and remove one further server of a cluster (not its first one)."""
        server = self._servers.get(server_id)
        if server is None:
            return
        if server.server_id == server.cluster_id:
            raise EngineError(f"server {server_id} is its cluster's first server")
        if server.cluster_dir.exists():
            (server.cluster_dir / DELETING_MARKER).touch()
        await server.stop()
        await server.delete()
        self._servers.pop(server_id, None)

    def list_servers(self) -> list[PgServer]:
        return list(self._servers.values())

    async def delete_server(self, cluster_id: str) -> None:
        """Delete a cluster: every server of it, its directory and its OS user."""
        server = self.get_server(cluster_id)
        marker = server.cluster_dir / DELETING_MARKER
        if server.cluster_dir.exists():
            marker.touch()
        await self._delete(server)
        for other in self.servers_of(cluster_id):
            self._servers.pop(other.server_id, None)

    async def _delete(self, server: PgServer) -> None:
        for other in self.servers_of(server.cluster_id):
            await other.stop()
        await server.stop()
        await self._remove_cluster_user(server.cluster_id)  # while its record is still there
        await server.delete()

    async def recover(self, known: Mapping[str, str], *, start: bool = True) -> RecoveryReport:
        """After a restart of auroral: ``known`` maps cluster ids to their rdsadmin passwords.

        Known clusters get a :class:`PgServer` (started if ``start``); a postmaster that survived the
        previous auroral process is shut down first. Interrupted deletes are finished. Directories of
        unknown clusters keep their data, but any postmaster still serving them is stopped.
        """
        report = RecoveryReport()
        self._prepare()
        present: set[str] = set()
        for entry in sorted(self.clusters_dir.iterdir()):
            cluster_id = entry.name
            if not entry.is_dir() or not _CLUSTER_ID.match(cluster_id) or cluster_id in self._servers:
                continue
            pgdata = entry / "pgdata"
            if (entry / DELETING_MARKER).exists():
                await postmaster.clear_leftovers(pgdata)
                try:
                    await self._remove_cluster_user(cluster_id)
                except (EngineError, OSError, ValueError) as exc:
                    report.failed[cluster_id] = str(exc)
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                report.deleted.append(cluster_id)
                continue
            present.add(cluster_id)
            await stop_upgrade_leftovers(entry)
            settled = settle_upgrade(entry)  # a major upgrade interrupted by the restart
            if settled is not None:
                log.warning("cluster %s: %s", cluster_id, settled)
            if (entry / CLONING_MARKER).exists():  # the first server was being cloned afresh: not usable
                await postmaster.clear_leftovers(pgdata)
                shutil.rmtree(pgdata, ignore_errors=True)
                fsafe.remove_file(entry / CLONING_MARKER)
            replicas = await self._replica_dirs(entry, report)
            if any(proc.postmaster_of(d / "pgdata") is not None for d in [entry, *replicas]):
                report.adopted_orphans.append(cluster_id)
            if cluster_id not in known:
                for d in [entry, *replicas]:
                    await postmaster.clear_leftovers(d / "pgdata")
                report.unknown.append(cluster_id)
                continue
            try:
                # the first server's data may be gone (its instance deleted while readers served on)
                major = next(int(fsafe.read_text(d / "pgdata" / "PG_VERSION").strip())
                             for d in [entry, *replicas] if (d / "pgdata" / "PG_VERSION").exists())
                runas = await asyncio.to_thread(self._cluster_user, cluster_id, create=False)
                inst = await self._for_major(major)
                servers = [self._server(cluster_id, inst, known[cluster_id], runas)]
                servers += [self._server(cluster_id, inst, known[cluster_id], runas, d.name) for d in replicas]
            except (OSError, ValueError, EngineError, StopIteration) as exc:
                report.failed[cluster_id] = str(exc)
                continue
            for server in servers:
                self._servers[server.server_id] = server
            if start:
                try:
                    await servers[0].start()
                    report.started.append(cluster_id)
                except EngineError as exc:
                    report.failed[cluster_id] = str(exc)
            else:
                for server in servers:
                    await postmaster.clear_leftovers(server.pgdata)
        report.missing = sorted(set(known) - present - set(self._servers))
        return report

    async def _replica_dirs(self, entry: Path, report: RecoveryReport) -> list[Path]:
        """The further servers' directories of a cluster directory; interrupted deletes are finished."""
        parent = entry / REPLICAS_DIR
        if not parent.is_dir():
            return []
        found = []
        for child in sorted(parent.iterdir()):
            if not child.is_dir() or not _CLUSTER_ID.match(child.name):
                continue
            await stop_upgrade_leftovers(child)
            settled = settle_upgrade(child)  # a primary after a failover is upgraded in its own directory
            if settled is not None:
                log.warning("server %s: %s", child.name, settled)
            if (child / DELETING_MARKER).exists() or (child / CLONING_MARKER).exists():
                await postmaster.clear_leftovers(child / "pgdata")
                shutil.rmtree(child, ignore_errors=True)
                report.deleted.append(child.name)
                continue
            found.append(child)
        return found

    async def close(self) -> None:
        """Stop every server (auroral shutting down); data stays."""
        for server in list(self._servers.values()):
            await server.stop()
