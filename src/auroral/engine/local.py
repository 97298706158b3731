"""The local engine: PostgreSQL servers as child processes of this auroral process.

Layout under ``<data_dir>/engine``::

    bin/<source>-<version>/    a copy of a PostgreSQL installation the service user cannot read in place
    ext/pg<major>-<hash>/      the auroral_rds server module, compiled for that major (see extension.py)
    templates/pg<major>/       one initialized data directory per major (see template.py)
    clusters/<resource id>/    one server: pgdata/, log/, run/ (see cluster.py)

Deleting writes ``clusters/<id>/.deleting`` first, so a crash half-way is finished by :meth:`recover`.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from auroral.engine import binaries, extension, osuser, postmaster, proc
from auroral.engine.binaries import Installation
from auroral.engine.cluster import PgServer, RestartPolicy, StatusCallback
from auroral.engine.errors import EngineError, ServerExistsError, ServerNotFoundError
from auroral.engine.osuser import RunAs
from auroral.engine.template import TemplateStore

_CLUSTER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
DELETING_MARKER = ".deleting"


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
    ) -> None:
        self.root = data_dir / "engine"
        self.runas = runas or osuser.service_user()
        self._installations = installations
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
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)
        self.clusters_dir.mkdir(exist_ok=True)
        os.chmod(self.clusters_dir, 0o711)
        osuser.ensure_traversable(self.clusters_dir, self.runas)
        self._prepared = True

    def installation(self, engine_version: str) -> Installation:
        """The installation serving ``engine_version``, runnable by the service user."""
        return self._runnable_copy(binaries.resolve(engine_version, self._installations))

    def _runnable_copy(self, inst: Installation) -> Installation:
        if inst.bindir not in self._runnable:
            self._prepare()
            copy = osuser.runnable(inst, self.runas, self.root / "bin")
            # compiled from the original installation: the copy leaves the server headers out
            module = extension.ensure_built(inst, self.root / "ext")
            if module is not None:
                osuser.ensure_traversable(module.parent, self.runas)
                copy = replace(copy, preload=(module,))
            self._runnable[inst.bindir] = copy
        return self._runnable[inst.bindir]

    def _for_major(self, major: int) -> Installation:
        pool = self._installations if self._installations is not None else binaries.available()
        for inst in pool:
            if inst.major == major:
                return self._runnable_copy(inst)
        raise EngineError(f"no PostgreSQL {major} installation for an existing data directory")

    def _server(self, cluster_id: str, inst: Installation, admin_password: str) -> PgServer:
        return PgServer(
            cluster_id, self.clusters_dir / cluster_id, inst, self.runas, self.templates, admin_password,
            on_status_change=self._on_status_change, restart_policy=self._restart_policy,
        )

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
        if not _CLUSTER_ID.match(cluster_id):
            raise EngineError(f"invalid cluster id {cluster_id!r}")
        if cluster_id in self._servers or (self.clusters_dir / cluster_id).exists():
            raise ServerExistsError(f"cluster {cluster_id} already exists")
        self._prepare()
        server = self._server(cluster_id, self.installation(engine_version), admin_password)
        self._servers[cluster_id] = server
        try:
            await server.create(master_username, master_password, database_name, parameters)
        except BaseException:
            self._servers.pop(cluster_id, None)
            await server.delete()
            raise
        return server

    def get_server(self, cluster_id: str) -> PgServer:
        try:
            return self._servers[cluster_id]
        except KeyError:
            raise ServerNotFoundError(f"cluster {cluster_id} not found") from None

    def list_servers(self) -> list[PgServer]:
        return list(self._servers.values())

    async def delete_server(self, cluster_id: str) -> None:
        server = self.get_server(cluster_id)
        marker = server.cluster_dir / DELETING_MARKER
        if server.cluster_dir.exists():
            marker.touch()
        await server.delete()
        del self._servers[cluster_id]

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
                shutil.rmtree(entry, ignore_errors=True)
                report.deleted.append(cluster_id)
                continue
            present.add(cluster_id)
            if proc.postmaster_of(pgdata) is not None:
                report.adopted_orphans.append(cluster_id)
            if cluster_id not in known:
                await postmaster.clear_leftovers(pgdata)
                report.unknown.append(cluster_id)
                continue
            try:
                major = int((pgdata / "PG_VERSION").read_text(encoding="ascii").strip())
                server = self._server(cluster_id, self._for_major(major), known[cluster_id])
            except (OSError, ValueError, EngineError) as exc:
                report.failed[cluster_id] = str(exc)
                continue
            self._servers[cluster_id] = server
            if start:
                try:
                    await server.start()
                    report.started.append(cluster_id)
                except EngineError as exc:
                    report.failed[cluster_id] = str(exc)
            else:
                await postmaster.clear_leftovers(pgdata)
        report.missing = sorted(set(known) - present - set(self._servers))
        return report

    async def close(self) -> None:
        """Stop every server (auroral shutting down); data stays."""
        for server in list(self._servers.values()):
            await server.stop()
