"""A managed block of a hosts file (``/etc/hosts``), so that endpoint names resolve with no client change.

Each auroral server owns one block, named by its data directory::

    # BEGIN auroral 3f2a9c0d41be
    127.0.0.5	db1.cluster-c7tj4example1.us-east-1.rds.amazonaws.com
    ...
    # END auroral 3f2a9c0d41be

A hosts file has no aliases, so CNAMEs are flattened to their addresses; a name with several
addresses gets one line per address (glibc returns them all, from every matching line), in an
order rotated on every rewrite. Several servers share the file: each rewrites only its own block,
under a lock (``flock`` on the file's directory, which a rename does not replace), and keeps every
other line as it was. A block left by a crash is replaced at the next start of that data directory.

Writing is careful because the file is shared and sensitive:

- a new version is written beside the file and renamed over it (readers see the old or the new
  file, never half of one); where that fails, as when the file is a bind mount in a container
  (rename gives EBUSY), it is rewritten in place instead;
- symlinks on the way are followed only if root or this user owns them, the file must be a regular
  file owned by root or this user, in a directory nobody else may write to (a sticky one aside), so
  a link planted by another user cannot point the rewrite at a file of auroral's choosing;
- mode and owner of the file are kept.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from auroral.dns.records import Zone

__all__ = ["HostsBlock", "UnsafeHostsFile", "block_id", "glibc_returns_all_lines", "render_block", "splice"]

_MAX_LINKS = 16
# rename over the file failed in a way an in-place rewrite may still get around
_IN_PLACE_ERRNOS = {errno.EBUSY, errno.EXDEV, errno.EACCES, errno.EPERM, errno.EROFS}


def glibc_returns_all_lines(host_conf: Path = Path("/etc/host.conf")) -> bool:
    """Whether glibc returns every line of a name, not only the first: ``multi on`` in host.conf
    (Debian's, Ubuntu's and Fedora's default) or ``RESOLV_MULTI=on``. Without it a reader endpoint
    resolves to one address, the first of the block (which rotates on every rewrite)."""
    env = os.environ.get("RESOLV_MULTI")
    if env is not None:
        return env.strip().lower() == "on"
    try:
        lines = host_conf.read_text(errors="replace").splitlines()
    except OSError:
        return False
    words = [line.split() for line in lines]
    return any(w[:2] == ["multi", "on"] for w in words if w)


class UnsafeHostsFile(OSError):
    """The hosts file (or a link or directory on its way) could be changed by another user."""


def block_id(data_dir: Path) -> str:
    """The block name of a data directory: stable across restarts, and no user text in the file."""
    return hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]


def _marker(kind: str, ident: str) -> str:
    return f"# {kind} auroral {ident}"


def _is_marker(line: str, kind: str, ident: str) -> bool:
    return line.split()[:4] == ["#", kind, "auroral", ident]


def render_block(zone: Zone, turn: int = 0) -> list[str]:
    """The hosts lines of ``zone`` (CNAMEs flattened), several addresses rotated by ``turn``."""
    lines: list[str] = []
    for name in zone.names():
        addresses = zone.resolve(name)
        if not addresses:
            continue
        start = turn % len(addresses)
        lines.extend(f"{address}\t{name}" for address in addresses[start:] + addresses[:start])
    return lines


def splice(text: str, ident: str, lines: list[str]) -> str:
    """``text`` with the block ``ident`` replaced by ``lines`` (removed when there are none).

    Every other line stays as it was. A BEGIN without its END (someone edited the file) loses only
    the marker: lines that may be the user's are never dropped.
    """
    source = text.splitlines(keepends=True)
    kept: list[str] = []
    i = 0
    while i < len(source):
        line = source[i]
        if _is_marker(line, "BEGIN", ident):
            end = next((k for k in range(i + 1, len(source)) if _is_marker(source[k], "END", ident)), None)
            i = i + 1 if end is None else end + 1
            continue
        if not _is_marker(line, "END", ident):
            kept.append(line)
        i += 1
    result = "".join(kept)
    if lines:
        if result and not result.endswith("\n"):
            result += "\n"
        body = "".join(f"{line}\n" for line in lines)
        result += (f"{_marker('BEGIN', ident)}\n# endpoint names of an auroral server: rewritten by it, "
                   f"do not edit\n{body}{_marker('END', ident)}\n")
    return result


def _trusted(uid: int) -> bool:
    return uid in (0, os.geteuid())


def resolve_trusted(path: Path) -> Path:
    """``path`` with its symlinks resolved, each of them owned by root or this user; else raise."""
    pending = list(Path(os.path.abspath(path)).parts[1:])
    current = Path("/")
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent
            continue
        candidate = current / part
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            if pending:
                raise
            return candidate  # the file itself may be created
        if stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > _MAX_LINKS:
                raise UnsafeHostsFile(errno.ELOOP, "too many symbolic links", str(path))
            if not _trusted(st.st_uid):
                raise UnsafeHostsFile(errno.EPERM, "a symbolic link owned by another user is on the way", str(path))
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = Path("/")
            pending = list(Path(target).parts[1 if target.startswith("/") else 0:]) + pending
            continue
        current = candidate
    return current


def _check_file(real: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode) or not _trusted(st.st_uid):
        raise UnsafeHostsFile(errno.EPERM, "not a regular file of root or this user", str(real))
    parent = os.stat(real.parent)
    others_write = parent.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if not _trusted(parent.st_uid) or (others_write and not parent.st_mode & stat.S_ISVTX):
        raise UnsafeHostsFile(errno.EPERM, "its directory is writable by other users", str(real))


@contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def rewrite(path: Path, transform: Callable[[str], str]) -> bool:
    """Apply ``transform`` to the text of ``path`` under the lock; False if nothing changed."""
    real = resolve_trusted(path)
    with _directory_lock(real.parent):
        real = resolve_trusted(path)  # again, now that no other auroral moves things
        try:
            fd = os.open(real, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:  # a hosts file of the user's choosing that does not exist yet
            fd = os.open(real, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            st = os.fstat(fd)
            _check_file(real, st)
            with os.fdopen(os.dup(fd), "rb") as handle:
                old = handle.read()
            text = old.decode("utf-8", errors="surrogateescape")
            new = transform(text).encode("utf-8", errors="surrogateescape")
            if new == old:
                return False
            try:
                _replace(real, st, new)
            except OSError as exc:
                if exc.errno not in _IN_PLACE_ERRNOS:
                    raise
                # e.g. a bind-mounted /etc/hosts: write over the old bytes, then cut what is left
                _write_all(fd, new, 0)
                os.ftruncate(fd, len(new))
                os.fsync(fd)
            return True
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done


def _replace(real: Path, st: os.stat_result, data: bytes) -> None:
    tmp = real.with_name(f".{real.name}.auroral-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            _write_all(fd, data, 0)
            if os.geteuid() == 0:
                os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, real)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class HostsBlock:
    """The block ``ident`` of the hosts file at ``path``."""

    def __init__(self, path: Path, ident: str) -> None:
        self.path, self.ident = path, ident
        self._turn = 0

    def write(self, zone: Zone) -> bool:
        """Rewrite the block from ``zone`` (several addresses in a new rotation each time)."""
        lines = render_block(zone, self._turn)
        self._turn += 1
        return rewrite(self.path, lambda text: splice(text, self.ident, lines))

    def remove(self) -> bool:
        return rewrite(self.path, lambda text: splice(text, self.ident, []))
