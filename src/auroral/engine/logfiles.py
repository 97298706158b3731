"""A server's PostgreSQL log files, as Aurora PostgreSQL names and keeps them.

Each server runs with ``logging_collector`` on and writes into its own log directory
(``<server dir>/pglog``, the cluster's OS user's, ``0700``), one file per rotation named by
:data:`FILENAME_PATTERN` (Aurora's ``log_filename``, not modifiable from Aurora PostgreSQL 17.4 on:
``postgresql.log.2026-12-06-1900``, and ``postgresql.log.2026-12-06-1900.csv`` with ``csvlog``). ``log_rotation_age`` (60 minutes unless the cluster's parameters
say otherwise) and ``log_rotation_size`` rotate them; :func:`expire` removes those last written longer
ago than ``rds.log_retention_period`` minutes. The RDS API shows them as ``error/<file name>``.

auroral reads these files as root while the server's OS user owns the directory and may rename,
replace or link any name in it at any moment. So nothing here goes by path: the directory is opened
with :func:`fsafe.open_dir` (a symlink is refused where that user could have planted it), every file
``openat`` relative to that descriptor with ``O_NOFOLLOW | O_NONBLOCK`` and used only if it is a
regular file with a single link (no symlink, FIFO or hard link to another file), and only names of the
exact form above are ever looked at (a name from an API request is compared with the listing, never
joined to a path).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from auroral.engine import fsafe

DIR_NAME = "pglog"
FILENAME_PATTERN = "postgresql.log.%Y-%m-%d-%H%M"
PREFIX = "postgresql.log."
# "2026-12-06-1900": digits and dashes at fixed places
_SHAPE = "dddd-dd-dd-dddd"
DEFAULT_RETENTION_MINUTES = 4320


CSV_SUFFIX = ".csv"  # log_destination=csvlog: the same name with .csv


def is_log_name(name: str) -> bool:
    """Whether ``name`` is a file name :data:`FILENAME_PATTERN` produces, with ``.csv`` for csvlog (checked
    character by character)."""
    if not name.startswith(PREFIX):
        return False
    rest = name[len(PREFIX):]
    if rest.endswith(CSV_SUFFIX):
        rest = rest[:-len(CSV_SUFFIX)]
    if len(rest) != len(_SHAPE):
        return False
    return all((c == "-" if s == "-" else ("0" <= c <= "9")) for c, s in zip(rest, _SHAPE, strict=True))


@dataclass(frozen=True)
class LogFile:
    name: str
    size: int
    last_written_ms: int


def _stat_entry(dfd: int, name: str) -> os.stat_result | None:
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return st if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 else None


def list_files(directory: Path) -> list[LogFile]:
    """The log files of ``directory``, oldest name first (empty if it does not exist yet)."""
    try:
        dfd = fsafe.open_dir(directory)
    except FileNotFoundError:
        return []
    try:
        out = []
        for name in sorted(os.listdir(dfd)):
            if not is_log_name(name):
                continue
            st = _stat_entry(dfd, name)
            if st is not None:
                out.append(LogFile(name, st.st_size, int(st.st_mtime * 1000)))
        return out
    finally:
        os.close(dfd)


def open_file(directory: Path, name: str) -> int | None:
    """A read-only descriptor of log file ``name`` (None: no such log file); the caller closes it.
    ``name`` must have the shape :func:`list_files` reports; the file is opened relative to the
    directory's descriptor, never following a link, and kept only if it is a regular file with one link."""
    if not is_log_name(name):
        return None
    try:
        dfd = fsafe.open_dir(directory)
    except FileNotFoundError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
            return None
        raise
    finally:
        os.close(dfd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        return None
    return fd


def _pread(fd: int, offset: int, length: int) -> bytes:
    chunks: list[bytes] = []
    while length > 0:
        chunk = os.pread(fd, length, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return b"".join(chunks)


@dataclass(frozen=True)
class Portion:
    data: bytes
    next_offset: int  # where the next forward read starts
    pending: bool  # more data after next_offset


MAX_PORTION = 1 << 20  # DownloadDBLogFilePortion: "up to 1 MB in size"
DEFAULT_TAIL_LINES = 10000  # "the entire log file is returned up to a maximum of 10000 lines"


def forward(fd: int, offset: int, lines: int | None, cap: int = MAX_PORTION) -> Portion:
    """From byte ``offset`` on: at most ``lines`` lines (all, if None), at most ``cap`` bytes, cut after
    the last whole line that fits (unless a single line is longer than ``cap``)."""
    size = os.fstat(fd).st_size
    offset = min(max(offset, 0), size)
    data = _pread(fd, offset, min(cap, size - offset))
    if lines is not None:
        cut = 0
        for _ in range(lines):
            nl = data.find(b"\n", cut)
            if nl < 0:
                cut = len(data)
                break
            cut = nl + 1
        data = data[:cut]
    if offset + len(data) < size and len(data) == cap:
        last = data.rfind(b"\n")
        if last >= 0:
            data = data[:last + 1]
    end = offset + len(data)
    return Portion(data, end, end < size)


def tail(fd: int, lines: int, cap: int = MAX_PORTION) -> Portion:
    """The last ``lines`` lines (at most ``cap`` bytes, whole lines only where possible)."""
    size = os.fstat(fd).st_size
    start = max(0, size - cap)
    data = _pread(fd, start, size - start)
    if start > 0:
        first = data.find(b"\n")
        if 0 <= first < len(data) - 1:
            data = data[first + 1:]
    parts = data.splitlines(keepends=True)
    data = b"".join(parts[-lines:]) if lines > 0 else b""
    return Portion(data, size, False)


_FAILURE_MARKS = ("PANIC:", "FATAL:", "terminated by signal", "exited with exit code", "was terminated")


def failure_lines(directory: Path, lines: int = 10) -> str:
    """The last lines of the newest log file that tell why a server went down (PANIC, FATAL, a child
    process that died): the collector writes there once it runs, not to the postmaster's stderr. Only
    those lines: the rest may be statements of users, and this text goes to auroral's own log."""
    files = list_files(directory)
    if not files:
        return ""
    newest = max(files, key=lambda f: (f.last_written_ms, f.name))
    fd = open_file(directory, newest.name)
    if fd is None:
        return ""
    try:
        text = tail(fd, 200, cap=65536).data.decode("utf-8", errors="replace")
    finally:
        os.close(fd)
    found = [line for line in text.splitlines() if any(mark in line for mark in _FAILURE_MARKS)]
    return "\n".join(found[-lines:])


def expire(directory: Path, retention_minutes: int, now: float | None = None) -> list[str]:
    """Remove the log files last written more than ``retention_minutes`` ago, except the newest one
    (the server may still write it); returns the names removed. Unlinking a name in the directory
    descriptor follows nothing."""
    now = time.time() if now is None else now
    cutoff = now - retention_minutes * 60
    files = list_files(directory)
    removed: list[str] = []
    if len(files) <= 1:
        return removed
    newest = max(files, key=lambda f: (f.last_written_ms, f.name)).name
    try:
        dfd = fsafe.open_dir(directory)
    except FileNotFoundError:
        return removed
    try:
        for item in files:
            if item.name == newest or item.last_written_ms / 1000 >= cutoff:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(item.name, dir_fd=dfd)
                removed.append(item.name)
    finally:
        os.close(dfd)
    return removed
