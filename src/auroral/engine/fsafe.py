"""File operations of a privileged process inside directories an unprivileged user can write.

As root, auroral writes configuration into data directories that belong to PostgreSQL's OS user. Code
running as that user (any escape from the database engine) can rename, replace and symlink every name
in them at any moment, so a plain ``open(path, "w")``, ``chmod`` or ``rename`` by path would let it
make root write, chmod or read a file of its choosing. Here every operation goes through file
descriptors instead:

- :func:`open_dir` walks a path component by component from ``/``; a symlink is followed only where it
  sits in a directory no one but root (or we) can write — there it is as trusted as the directory —
  and refused (``ELOOP``) anywhere else;
- files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` under an unpredictable temporary name in
  that directory (``openat``), chowned and chmodded through the descriptor (``fchown``/``fchmod``) and
  renamed within the same directory descriptor (``renameat``), which replaces whatever the target name
  was (a symlink included) without following it;
- reads open with ``O_NOFOLLOW | O_NONBLOCK`` and accept only a regular file with a single link (not
  a FIFO that would block us, not a hard link to someone else's file), up to a size limit.

A failure raises :class:`UnsafePathError` (an ``OSError``) and leaves what lies outside untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_MAX_SYMLINKS = 40
READ_LIMIT = 1 << 20


class UnsafePathError(OSError):
    """A path that a privileged process must not use (a symlink, a FIFO, a hard link...)."""


def _trusted(st: os.stat_result) -> bool:
    """Only root (or we) can add, remove or rename entries of this directory."""
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


def open_dir(path: Path) -> int:
    """A descriptor of directory ``path``, reached without following a symlink an untrusted user
    could have planted (see the module docstring). The caller closes it."""
    todo = list(Path(os.path.abspath(path)).parts[1:])
    fd = os.open("/", _DIR_FLAGS)
    followed = 0
    try:
        while todo:
            part = todo.pop(0)
            try:
                nfd = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                if not stat.S_ISLNK(st.st_mode):
                    raise
                if not _trusted(os.fstat(fd)) or followed >= _MAX_SYMLINKS:
                    raise UnsafePathError(errno.ELOOP, "symbolic link in a directory others can write",
                                          str(path)) from None
                followed += 1
                target = os.readlink(part, dir_fd=fd)
                todo[:0] = [p for p in Path(target).parts if p != "/"]
                if target.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", _DIR_FLAGS)
                continue
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def directory(path: Path) -> Iterator[int]:
    fd = open_dir(path)
    try:
        yield fd
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes, *, mode: int = 0o600, uid: int = -1, gid: int = -1) -> None:
    """Atomically replace ``path`` with ``data`` (owner ``uid:gid`` if given, ``mode``)."""
    with directory(path.parent) as dfd:
        tmp = f".{path.name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dfd)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if uid != -1 or gid != -1:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise


def remove_file(path: Path) -> bool:
    """Remove the entry ``path`` (never following a symlink on the way); False if it was not there."""
    with directory(path.parent) as dfd:
        try:
            os.unlink(path.name, dir_fd=dfd)
        except FileNotFoundError:
            return False
        os.fsync(dfd)
    return True


def _open_regular(dfd: int, name: str, flags: int, display: Path) -> int:
    fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600, dir_fd=dfd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        raise UnsafePathError(errno.EPERM, "not a regular file with a single link", str(display))
    os.set_blocking(fd, True)
    return fd


def open_file(path: Path, flags: int, mode: int = 0o600) -> int:
    """``open(path, flags)`` for a regular file (created with ``mode`` if ``O_CREAT``), no symlinks."""
    with directory(path.parent) as dfd:
        if flags & os.O_CREAT:
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 mode, dir_fd=dfd))
        return _open_regular(dfd, path.name, flags & ~(os.O_CREAT | os.O_EXCL), path)


def read_bytes(path: Path, limit: int = READ_LIMIT) -> bytes:
    """The content of the regular file ``path`` (no symlinks, no FIFOs), at most ``limit`` bytes."""
    with directory(path.parent) as dfd:
        fd = _open_regular(dfd, path.name, os.O_RDONLY, path)
    try:
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        raise UnsafePathError(errno.EFBIG, f"larger than {limit} bytes", str(path))
    finally:
        os.close(fd)


def read_text(path: Path, limit: int = READ_LIMIT) -> str:
    return read_bytes(path, limit).decode("utf-8", errors="replace")


def make_dir(path: Path, *, mode: int = 0o700, uid: int = -1, gid: int = -1) -> None:
    """Create directory ``path`` if missing (its parent must exist) and give it ``uid:gid`` and
    ``mode``. Whatever else sits at that name (a symlink, a file) is removed first."""
    with directory(path.parent) as dfd:
        for _ in range(3):
            with contextlib.suppress(FileExistsError):
                os.mkdir(path.name, 0o700, dir_fd=dfd)
            try:
                fd = os.open(path.name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dfd)
                break
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                os.unlink(path.name, dir_fd=dfd)  # a symlink or a file in our place
        else:
            raise UnsafePathError(errno.EEXIST, "cannot create a directory there", str(path))
    try:
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def chown_tree(path: Path, from_uid: int, uid: int, gid: int) -> None:
    """Give every entry of the tree ``path`` owned by ``from_uid`` to ``uid:gid``, through directory
    descriptors (a directory swapped for a symlink meanwhile is never entered). Entries of other
    owners are left alone: a hard link to a file of someone else's must not change hands."""
    with directory(path.parent) as parent:
        fd = os.open(path.name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent)
    try:
        st = os.fstat(fd)
        if st.st_uid == from_uid:
            os.fchown(fd, uid, gid)
        _chown_entries(fd, from_uid, uid, gid)
    finally:
        os.close(fd)


def _chown_entries(dfd: int, from_uid: int, uid: int, gid: int) -> None:
    for name in os.listdir(dfd):
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                child = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dfd)
                try:
                    if os.fstat(child).st_uid == from_uid:
                        os.fchown(child, uid, gid)
                    _chown_entries(child, from_uid, uid, gid)
                finally:
                    os.close(child)
            elif st.st_uid == from_uid:
                os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed or swapped meanwhile
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
