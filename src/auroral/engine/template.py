"""Fast provisioning: one initialized data directory per major, cloned for every new cluster.

``initdb`` (and the first start, for the bootstrap roles) runs once per major into
``<data_dir>/engine/templates/pg<major>``; it is then shut down cleanly, fsynced and never started again.
A cluster gets a copy (``cp -a --reflink=auto``: a cheap reflink on btrfs/XFS, a plain copy on ext4),
which must be fsynced before the cluster is reported available — a copy sitting in the page cache is
not durable. :meth:`TemplateStore.clone` leaves that to the caller (:meth:`TemplateStore.make_durable`),
which overlaps it with starting the copy: both take about as long. What a clone still needs is the
per-cluster part: the ``rdsadmin`` password, the master user and its database.

Templates use 1 MB WAL segments (``initdb --wal-segsize=1``) instead of 16 MB: a fresh data directory
is then 24 MB instead of 39 MB, and copying plus fsyncing those bytes is most of a create. Clusters
keep the segment size of their template for life; smaller segments only mean more WAL files (recycled
as usual) under heavy writes.

``template0`` gets Aurora's functions and ``version()`` too (``aurora.install_sql``, once, while nobody else
can connect: a template is never reachable by users), so that a database created ``TEMPLATE template0``
(``pg_restore``, ``createdb -T template0``) answers like every other one; the other databases get them at
every start (``aurora.install``). template0 is frozen again afterwards.

A template carries a revision stamp; changing the base configuration or ``bootstrap.sql`` means bumping
:data:`TEMPLATE_REVISION`, and the next cluster rebuilds the template (existing clusters are untouched).

Tests only: ``AURORAL_TEMPLATE_CACHE`` names a directory (root's or the user's own, private) where each
template built is also kept, keyed by installation, revision and owner, and from which the next data
directory copies it instead of building it again. The test suite starts dozens of servers, each of
which would otherwise run initdb and the bootstrap for every major it touches; the first build of each
major in a test session still runs :meth:`TemplateStore._build`. Never set it in production: a
template is meant to be built by the installation that serves it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from auroral.engine import aurora, bootstrap, conf, fsafe, postmaster
from auroral.engine.binaries import Installation
from auroral.engine.osuser import RunAs, check_traversable, current, make_private_dir

TEMPLATE_REVISION = "3"
WAL_SEGMENT_MB = 1
# tests only (see the module docstring): built templates are shared across data directories here
ENV_CACHE = "AURORAL_TEMPLATE_CACHE"


class TemplateStore:
    """Templates under ``root`` (``<data_dir>/engine/templates``), owned by the PostgreSQL user."""

    def __init__(self, root: Path, runas: RunAs) -> None:
        self.root = root
        self.runas = runas
        self._locks: dict[int, asyncio.Lock] = {}

    def path(self, inst: Installation) -> Path:
        return self.root / f"pg{inst.major}"

    def _stamp(self, inst: Installation) -> Path:
        return self.root / f"pg{inst.major}.stamp"

    def _stamp_text(self, inst: Installation) -> str:
        return f"revision={TEMPLATE_REVISION} major={inst.major}\n"

    def is_ready(self, inst: Installation) -> bool:
        try:
            return self._stamp(inst).read_text(encoding="utf-8") == self._stamp_text(inst)
        except FileNotFoundError:
            return False

    async def ensure(self, inst: Installation) -> Path:
        """The template for ``inst``'s major, built now if missing or outdated."""
        lock = self._locks.setdefault(inst.major, asyncio.Lock())
        async with lock:
            if not self.is_ready(inst):
                cache = os.environ.get(ENV_CACHE)
                if not cache or not await self._from_cache(inst, Path(cache)):
                    await self._build(inst)
                    if cache:
                        await self._to_cache(inst, Path(cache))
        return self.path(inst)

    def _cache_key(self, inst: Installation) -> str:
        kind = "rds" if inst.preload else "plain"
        return f"pg{inst.major}-{inst.version}-{inst.source}-{kind}-r{TEMPLATE_REVISION}-u{self.runas.uid}"

    async def _from_cache(self, inst: Installation, cache: Path) -> bool:
        """Tests only: copy the cached template of ``inst`` (``AURORAL_TEMPLATE_CACHE``), if there is one."""
        source = cache / self._cache_key(inst)
        if not source.is_dir():
            return False
        make_private_dir(self.root, current(), 0o700 if self.runas.is_current else 0o711)
        check_traversable(self.root, self.runas)
        target = self.path(inst)
        build = self.root / f".pg{inst.major}.build"
        for leftover in (build, target):
            shutil.rmtree(leftover, ignore_errors=True)
        self._stamp(inst).unlink(missing_ok=True)
        await _copy_tree(source, build)
        build.rename(target)
        self._stamp(inst).write_text(self._stamp_text(inst), encoding="utf-8")
        return True

    async def _to_cache(self, inst: Installation, cache: Path) -> None:
        """Tests only: keep a copy of the template just built; published by a rename, so a concurrent
        reader sees the whole copy or none."""
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = cache / self._cache_key(inst)
        if final.exists():
            return
        partial = cache / f".{final.name}.{os.getpid()}.{id(self)}"
        shutil.rmtree(partial, ignore_errors=True)
        await _copy_tree(self.path(inst), partial)
        try:
            partial.rename(final)
        except OSError:  # another process published it first
            shutil.rmtree(partial, ignore_errors=True)

    async def clone(self, inst: Installation, dest: Path, owner: RunAs | None = None) -> None:
        """Copy the template to ``dest`` (which must not exist) for ``owner`` (default: the templates'
        user). Not durable yet: see :meth:`make_durable`."""
        source = await self.ensure(inst)
        owner = owner or self.runas
        check_traversable(dest.parent, owner)
        await _copy_tree(source, dest)
        copied_by = self.runas.uid if shutil.which("cp") else os.geteuid()  # cp -a keeps the owner
        if not owner.is_current and owner.uid != copied_by:
            await asyncio.to_thread(fsafe.chown_tree, dest, copied_by, owner.uid, owner.gid)
        os.chmod(dest, 0o700)

    @staticmethod
    async def make_durable(dest: Path) -> None:
        """fsync a clone; safe while its server already runs."""
        await asyncio.to_thread(postmaster.fsync_tree, dest)

    async def _build(self, inst: Installation) -> None:
        # ours, so that no PostgreSQL user can swap the names we use here (pg<major>, the stamps)
        make_private_dir(self.root, current(), 0o700 if self.runas.is_current else 0o711)
        check_traversable(self.root, self.runas)
        target = self.path(inst)
        build = self.root / f".pg{inst.major}.build"
        boot = self.root / f".pg{inst.major}.boot"
        for leftover in (build, boot, target):
            shutil.rmtree(leftover, ignore_errors=True)
        self._stamp(inst).unlink(missing_ok=True)

        make_private_dir(build, self.runas)  # initdb fills an empty directory it owns
        await postmaster.initdb(inst, build, self.runas, (f"--wal-segsize={WAL_SEGMENT_MB}",))
        conf.write(build / "postgresql.conf", conf.read(build / "postgresql.conf") + conf.INCLUDES, self.runas)
        conf.write(build / conf.BASE_FILE, conf.base_conf(inst.major), self.runas)
        conf.write(build / conf.PARAMS_FILE, conf.render({}, "parameter group values"), self.runas)

        make_private_dir(boot, self.runas)
        socket_dir = postmaster.socket_dir_for(boot)
        make_private_dir(socket_dir, self.runas)
        conf.write(build / conf.LOCAL_FILE, conf.local_conf(socket_dir, "auroral-template"), self.runas)
        conf.write(build / "pg_hba.conf", conf.hba_conf("bootstrap"), self.runas)
        log_path = boot / "postmaster.log"
        process = await postmaster.launch(inst, build, self.runas, log_path)
        try:

            async def check() -> None:
                async with await postmaster.connect(socket_dir, None):
                    pass

            await postmaster.wait_ready(process, build, socket_dir, log_path, check)
            async with await postmaster.connect(socket_dir, None) as connection:
                await connection.execute(bootstrap.template_sql(inst.major).encode())
                await connection.execute(b"ALTER DATABASE template0 WITH ALLOW_CONNECTIONS true")
                async with await postmaster.connect(socket_dir, None, "template0") as template0:
                    await template0.execute(aurora.SESSION_SETUP.encode())
                    await template0.execute(aurora.install_sql().encode())
                    await template0.execute(b"VACUUM FREEZE")
                await connection.execute(b"ALTER DATABASE template0 WITH ALLOW_CONNECTIONS false")
        finally:
            await postmaster.shutdown(process)
        # the clone writes its own local settings and hba before its first start
        (build / conf.LOCAL_FILE).unlink()
        await postmaster.sync(inst, build, self.runas)
        build.rename(target)
        self._stamp(inst).write_text(self._stamp_text(inst), encoding="utf-8")
        shutil.rmtree(boot, ignore_errors=True)
        if socket_dir != boot / "run":
            shutil.rmtree(socket_dir, ignore_errors=True)


async def _copy_tree(source: Path, dest: Path) -> None:
    """``cp -a`` (owners kept; a reflink where the filesystem has them), else a copy by this process."""
    if shutil.which("cp"):
        process = await asyncio.create_subprocess_exec(
            "cp", "-a", "--reflink=auto", str(source), str(dest),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        if process.returncode != 0:
            raise OSError(f"cp failed: {err.decode(errors='replace')}")
    else:
        await asyncio.to_thread(shutil.copytree, source, dest, symlinks=True)
